-- pg-auditlog migration 4: bypass switch, tamper evidence (sealing), support for role separation.
-- Runs with search_path = <audit schema>, pg_catalog, pg_temp like migration 1. Functions that
-- are called from the capture triggers use BEGIN ATOMIC bodies or SET search_path FROM CURRENT,
-- so their names are bound here, at install time, and no caller's search_path can redirect them.

-- Security settings the installer writes from the config (one row).
CREATE TABLE security_setting (
  singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  -- Members of this role may switch capture off for a transaction (auditlog.disable).
  bypass_role     name,
  -- Set by install from the config's "tamperEvidence": enables seal().
  tamper_evidence boolean NOT NULL DEFAULT false
);
INSERT INTO security_setting DEFAULT VALUES;

-- Finds the bypass entry of the current transaction without scanning the log.
CREATE INDEX log_entry_bypass_idx ON log_entry (txid) WHERE action IN ('bypass', 'bypass_refused');

-- Decides, for a transaction that set auditlog.disable, whether the invoking role may skip
-- capture, and records the decision once per transaction: 'bypass' when honoured,
-- 'bypass_refused' when ignored. Only reached when the setting is on, so it may be slow-ish.
CREATE FUNCTION bypass_allowed(tbl_schema text, tbl_name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
  who text := invoking_user();
  role_name name;
  role_oid oid;
  granted boolean;
  verb text;
BEGIN
  SELECT s.bypass_role, r.oid INTO role_name, role_oid
  FROM security_setting s LEFT JOIN pg_roles r ON r.rolname = s.bypass_role;
  -- A dropped bypass role means nobody may bypass; it must never fail the user's write.
  granted := role_oid IS NOT NULL AND pg_has_role(who::name, role_oid, 'MEMBER');
  verb := CASE WHEN granted THEN 'bypass' ELSE 'bypass_refused' END;
  IF NOT EXISTS (SELECT 1 FROM log_entry
                 WHERE txid = pg_current_xact_id() AND action IN ('bypass', 'bypass_refused') AND action = verb) THEN
    INSERT INTO log_entry (table_schema, table_name, action, actor, cid, remote_addr, db_user,
                           application_name, additional_data, tenant_id)
    VALUES (tbl_schema, tbl_name, verb,
            NULLIF(current_setting('auditlog.actor', true), ''),
            NULLIF(current_setting('auditlog.cid', true), ''),
            try_inet(NULLIF(current_setting('auditlog.remote_addr', true), '')),
            who,
            NULLIF(current_setting('application_name'), ''),
            jsonb_build_object('setting', 'auditlog.disable', 'bypass_role', role_name, 'granted', granted,
                               'data', try_jsonb(NULLIF(current_setting('auditlog.data', true), ''))),
            NULLIF(current_setting('auditlog.tenant', true), ''));
  END IF;
  RETURN granted;
END
$$;

-- Called first in every capture function: true means "skip this row". Cheap on the common
-- path: reads one setting and stops; role membership is checked only when the setting is on.
-- BEGIN ATOMIC binds bypass_allowed here, and keeps the function inlinable (no SET clause).
CREATE FUNCTION capture_disabled(tbl_schema text, tbl_name text) RETURNS boolean
LANGUAGE sql VOLATILE
BEGIN ATOMIC
  SELECT CASE WHEN pg_catalog.current_setting('auditlog.disable', true) IN ('on', 'true')
              THEN bypass_allowed(tbl_schema, tbl_name)
              ELSE false END;
END;

-- Tamper evidence. Entries are sealed after they commit, in batches, by seal() (run by
-- `auditlog verify` or a scheduler); writers never take a lock for it. A batch covers every
-- entry of the transactions in [from_txid, to_txid): to_txid is the xmin of the sealer's
-- snapshot, so each of those transactions had ended and no entry can join the batch later.
CREATE TABLE seal_batch (
  batch     bigint      PRIMARY KEY,
  from_txid xid8        NOT NULL,
  to_txid   xid8        NOT NULL,
  entries   bigint      NOT NULL,
  -- sha256(previous batch digest || batch header || (id, entry digest) in chain order)
  digest    bytea       NOT NULL,
  sealed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE entry_seal (
  id     bigint PRIMARY KEY,
  batch  bigint NOT NULL,
  -- Position in the chain: entries ordered by (txid, id), numbered without gaps.
  seq    bigint NOT NULL UNIQUE,
  digest bytea  NOT NULL
);

-- The digest of one entry over every public column. Time is rendered in UTC, so the session's
-- TimeZone cannot change it; jsonb text output is canonical.
CREATE FUNCTION entry_digest(e log_entry) RETURNS bytea
LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT sha256(convert_to(jsonb_build_array(
    e.id, to_char(e.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), e.txid::text,
    e.table_schema, e.table_name, e.object_pk, e.object_repr, e.action, e.changes, e.snapshot,
    e.actor, e.cid, e.remote_addr::text, e.db_user, e.application_name, e.additional_data,
    e.tenant_id)::text, 'UTF8'));
END;

-- The chain link of one batch, from the previous batch's digest and the stored entry seals.
CREATE FUNCTION batch_digest(prev bytea, b seal_batch) RETURNS bytea
LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT sha256(coalesce(prev, '\x'::bytea)
    || convert_to(concat_ws('|', b.batch, b.from_txid, b.to_txid, b.entries), 'UTF8')
    || coalesce((SELECT string_agg(int8send(s.id) || s.digest, '\x'::bytea ORDER BY s.seq)
                 FROM entry_seal s WHERE s.batch = b.batch), '\x'::bytea));
END;

-- Seals every entry of the transactions that ended since the last seal. Returns the number of
-- entries sealed. One sealer at a time (lock on seal_batch); writers are never blocked.
CREATE FUNCTION seal() RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
  prev_batch seal_batch;
  new_batch seal_batch;
  horizon xid8;
  first_seq bigint;
  n bigint;
BEGIN
  IF NOT (SELECT tamper_evidence FROM security_setting) THEN
    RAISE EXCEPTION 'tamper evidence is not enabled'
      USING HINT = 'set "tamperEvidence": true in the config and run auditlog install';
  END IF;
  LOCK TABLE seal_batch IN SHARE ROW EXCLUSIVE MODE;
  horizon := pg_snapshot_xmin(pg_current_snapshot());
  SELECT * INTO prev_batch FROM seal_batch ORDER BY seal_batch.batch DESC LIMIT 1;
  IF prev_batch.batch IS NOT NULL AND horizon <= prev_batch.to_txid THEN
    RETURN 0;
  END IF;
  first_seq := coalesce((SELECT max(seq) FROM entry_seal), 0);
  new_batch := ROW(coalesce(prev_batch.batch, 0) + 1, coalesce(prev_batch.to_txid, '0'::xid8), horizon, 0,
                   '\x'::bytea, now());
  INSERT INTO entry_seal (id, batch, seq, digest)
  SELECT e.id, new_batch.batch, first_seq + row_number() OVER (ORDER BY e.txid, e.id), entry_digest(e)
  FROM log_entry e
  WHERE e.txid >= new_batch.from_txid AND e.txid < horizon;
  GET DIAGNOSTICS n = ROW_COUNT;
  new_batch.entries := n;
  new_batch.digest := batch_digest(prev_batch.digest, new_batch);
  INSERT INTO seal_batch SELECT new_batch.*;
  RETURN n;
END
$$;

-- Everything that no longer matches the seals: one row per problem. entry_id is null for a
-- problem that concerns a whole batch (its seals were altered, or seals deleted with entries).
CREATE FUNCTION verify_seals()
RETURNS TABLE (entry_id bigint, batch bigint, problem text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  horizon xid8 := (SELECT max(to_txid) FROM seal_batch);
  prev bytea;
  b seal_batch;
  seq_range record;
BEGIN
  IF horizon IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT e.id, s.batch,
           CASE WHEN s.id IS NULL THEN 'inserted: not part of the sealed chain'
                ELSE 'edited: content differs from its seal' END
    FROM log_entry e LEFT JOIN entry_seal s ON s.id = e.id
    WHERE (e.txid < horizon OR s.id IS NOT NULL)
      AND (s.id IS NULL OR s.digest <> entry_digest(e))
    UNION ALL
    SELECT s.id, s.batch, 'deleted: sealed entry is missing'
    FROM entry_seal s
    WHERE NOT EXISTS (SELECT 1 FROM log_entry e WHERE e.id = s.id);
  FOR b IN SELECT * FROM seal_batch ORDER BY seal_batch.batch LOOP
    SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi INTO seq_range FROM entry_seal s WHERE s.batch = b.batch;
    IF batch_digest(prev, b) <> b.digest OR seq_range.n <> b.entries THEN
      entry_id := NULL;
      batch := b.batch;
      problem := format('batch %s: chain broken (seals altered or removed; %s of %s entry seals present)',
                        b.batch, seq_range.n, b.entries);
      RETURN NEXT;
    END IF;
    prev := b.digest;
  END LOOP;
END
$$;

-- DDL watch. A table's owner (often a DBA or migration role, not a superuser) can drop or
-- disable its triggers. Event triggers, created by a superuser installer, record each such
-- change as a 'ddl' entry, which is then sealed like any other. Superusers can still disable
-- event triggers; verify reports that (security_setting.ddl_watch).
ALTER TABLE security_setting ADD COLUMN ddl_watch boolean NOT NULL DEFAULT false;

CREATE FUNCTION record_capture_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
  found jsonb;
  r jsonb;
BEGIN
  -- Superusers and members of the audit owner (the installer among them) change capture on
  -- purpose, and could switch this watch off anyway: not recorded, so installs add no noise.
  IF pg_has_role(invoking_user()::name,
                 (SELECT nspowner FROM pg_namespace WHERE nspname = current_schema()), 'MEMBER') THEN
    RETURN;
  END IF;
  IF TG_EVENT = 'sql_drop' THEN
    -- Audit triggers dropped (by DROP TRIGGER, DROP FUNCTION … CASCADE, DROP TABLE …).
    SELECT jsonb_agg(jsonb_build_object(
             'table_schema', d.address_names[1], 'table_name', d.address_names[2], 'event', 'dropped',
             'object_type', d.object_type, 'object', d.object_identity, 'direct', d.original))
    INTO found
    FROM pg_event_trigger_dropped_objects() d
    WHERE d.object_type IN ('trigger', 'table')
      AND (d.object_type = 'table' OR d.address_names[3] LIKE 'auditlog\_%')
      AND EXISTS (SELECT 1 FROM tracked_table t
                  WHERE t.table_schema = d.address_names[1] AND t.table_name = d.address_names[2]);
  ELSE
    -- Audit triggers left disabled, or firing only in replica mode, by ALTER TABLE.
    SELECT jsonb_agg(jsonb_build_object(
             'table_schema', n.nspname, 'table_name', c.relname, 'event', 'disabled',
             'object', tg.tgname, 'state', tg.tgenabled))
    INTO found
    FROM pg_event_trigger_ddl_commands() cmd
    JOIN pg_trigger tg ON tg.tgrelid = cmd.objid
    JOIN pg_proc p ON p.oid = tg.tgfoid
    JOIN pg_class c ON c.oid = tg.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_namespace own ON own.oid = p.pronamespace AND own.nspname = current_schema()
    WHERE cmd.object_type = 'table'
      AND tg.tgenabled NOT IN ('O', 'A');
  END IF;
  FOR r IN SELECT value FROM jsonb_array_elements(coalesce(found, '[]')) LOOP
    INSERT INTO log_entry (table_schema, table_name, action, actor, cid, remote_addr, db_user,
                           application_name, additional_data, tenant_id)
    VALUES (r->>'table_schema', r->>'table_name', 'ddl',
            NULLIF(current_setting('auditlog.actor', true), ''),
            NULLIF(current_setting('auditlog.cid', true), ''),
            try_inet(NULLIF(current_setting('auditlog.remote_addr', true), '')),
            invoking_user(),
            NULLIF(current_setting('application_name'), ''),
            (r - 'table_schema' - 'table_name') || jsonb_build_object('command', TG_TAG),
            NULLIF(current_setting('auditlog.tenant', true), ''));
  END LOOP;
END
$$;
