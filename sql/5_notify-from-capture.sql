-- pg-auditlog migration 5: writers wake subscribers themselves.
-- Runs with search_path = <audit schema>, pg_catalog, pg_temp (see migration 1).
--
-- Migration 2 notified from a statement-level trigger on log_entry. That trigger cost every
-- audited statement a second PL/pgSQL call (~46,000 instructions with its checks, callgrind)
-- and every entry a copy into its transition table (~4,500). Now each writer asks
-- notify_turn() after its INSERT, an inlined expression, and only the window's one notifier
-- pays for a function call. The rules are unchanged: per 10 ms window one transaction notifies
-- (the first to take the window's advisory lock), at most once, at commit.
DROP TRIGGER notify_entries ON log_entry;
DROP FUNCTION notify_entries();

-- True when this transaction should send the window's notification: it has not notified yet
-- and it is the first to take this window's lock. SQL with no SET clause, so callers inline it.
CREATE FUNCTION notify_turn(audit_schema text) RETURNS boolean
LANGUAGE sql VOLATILE
BEGIN ATOMIC
  SELECT current_setting('auditlog.notify_sent', true) IS DISTINCT FROM 'on'
     AND pg_try_advisory_xact_lock(hashtext('pg-auditlog notify ' || audit_schema),
                                   (floor(date_part('epoch', clock_timestamp()) * 100)::bigint % 2147483647)::int);
END;

-- Sends the notification (at commit). Payload as in migration 2: the highest entry id written
-- by the statement, how many, table and action, each text cut to 200 characters.
CREATE FUNCTION notify_entries(last_id bigint, entries bigint, tbl_schema text, tbl_name text, verb text)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  PERFORM set_config('auditlog.notify_sent', 'on', true);
  PERFORM pg_notify(events_channel(current_schema()), json_build_object(
    'id', last_id, 'count', entries,
    'schema', left(tbl_schema, 200), 'table', left(tbl_name, 200), 'action', left(verb, 200))::text);
END
$$;

-- The writers defined in earlier migrations, unchanged but for the notify_turn() call after
-- their INSERT (released migrations are never edited, so they are restated here).

CREATE OR REPLACE FUNCTION generic_capture(op text, tbl_schema text, tbl_name text, old_row jsonb, new_row jsonb)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
  plan jsonb;
  rec jsonb := coalesce(new_row, old_row);
  diff jsonb := '{}';
  snap jsonb := '{}';
  col text;
  masked boolean;
  row_pk text;
BEGIN
  SELECT t.config INTO plan FROM tracked_table t WHERE t.table_schema = tbl_schema AND t.table_name = tbl_name;
  IF op = 'TRUNCATE' THEN
    diff := NULL;
  ELSE
    FOR col IN SELECT jsonb_object_keys(rec) LOOP
      IF plan->'columns' @> jsonb_build_array(jsonb_build_object('name', col)) THEN
        masked := plan->'columns' @> jsonb_build_array(jsonb_build_object('name', col, 'masked', true));
      ELSIF plan->'allColumns' ? col THEN
        CONTINUE;  -- excluded, or not included, when installed
      ELSE
        masked := true;  -- new since install
      END IF;
      IF plan->'snapshot' = 'true' THEN
        snap := snap || jsonb_build_object(col, CASE WHEN masked AND rec->col <> 'null' THEN '"[masked]"'::jsonb ELSE rec->col END);
      END IF;
      CONTINUE WHEN op = 'UPDATE' AND old_row->col IS NOT DISTINCT FROM new_row->col;
      diff := diff || jsonb_build_object(col, jsonb_build_array(
        CASE WHEN masked AND old_row->col <> 'null' THEN '"[masked]"'::jsonb ELSE old_row->col END,
        CASE WHEN masked AND new_row->col <> 'null' THEN '"[masked]"'::jsonb ELSE new_row->col END));
    END LOOP;
    IF op = 'UPDATE' AND diff = '{}' THEN
      RETURN;
    END IF;
    IF jsonb_array_length(plan->'primaryKey') = 1 THEN
      row_pk := rec->>(plan->'primaryKey'->>0);
    ELSE
      SELECT jsonb_agg(rec->k ORDER BY ord)::text INTO row_pk
      FROM jsonb_array_elements_text(plan->'primaryKey') WITH ORDINALITY AS p(k, ord);
    END IF;
  END IF;

  INSERT INTO log_entry
    (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
     actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
  VALUES (tbl_schema, tbl_name, row_pk, rec->>(plan->>'objectRepr'), lower(op), diff,
          CASE WHEN plan->'snapshot' = 'true' AND op <> 'TRUNCATE' THEN snap END,
          NULLIF(current_setting('auditlog.actor', true), ''),
          NULLIF(current_setting('auditlog.cid', true), ''),
          try_inet(NULLIF(current_setting('auditlog.remote_addr', true), '')),
          invoking_user(),
          NULLIF(current_setting('application_name'), ''),
          try_jsonb(NULLIF(current_setting('auditlog.data', true), '')),
          NULLIF(current_setting('auditlog.tenant', true), ''));
  IF notify_turn(current_schema()) THEN
    PERFORM notify_entries(lastval(), 1, tbl_schema, tbl_name, lower(op));
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION log_event(
  event_action text,
  event_table_schema text DEFAULT NULL,
  event_table_name text DEFAULT NULL,
  event_object_pk jsonb DEFAULT NULL,
  event_object_repr text DEFAULT NULL,
  event_data jsonb DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
  session_data jsonb := try_jsonb(NULLIF(current_setting('auditlog.data', true), ''));
  new_id bigint;
BEGIN
  IF event_action IS NULL OR event_action !~ '^[a-z][a-z0-9_.:-]{0,62}$' THEN
    RAISE EXCEPTION 'invalid event action %: use lower-case letters, digits, "_", ".", ":" or "-", starting with a letter, at most 63 characters', quote_nullable(event_action)
      USING ERRCODE = '22023';
  END IF;
  IF event_action IN ('insert', 'update', 'delete', 'truncate') THEN
    RAISE EXCEPTION 'event action "%" is reserved for captured changes', event_action
      USING ERRCODE = '22023', HINT = 'use another verb, e.g. "access", "export", "login"';
  END IF;
  IF event_data IS NOT NULL AND jsonb_typeof(event_data) <> 'object' THEN
    RAISE EXCEPTION 'event data must be a JSON object' USING ERRCODE = '22023';
  END IF;
  IF (event_table_name IS NULL) <> (event_table_schema IS NULL) OR (event_object_pk IS NOT NULL AND event_table_name IS NULL) THEN
    RAISE EXCEPTION 'an event names a table with both schema and name, and an object only together with its table' USING ERRCODE = '22023';
  END IF;
  -- Event data extends the session's data; on a shared key the event's value wins.
  IF jsonb_typeof(session_data) = 'object' AND event_data IS NOT NULL THEN
    event_data := session_data || event_data;
  ELSE
    event_data := coalesce(event_data, session_data);
  END IF;

  INSERT INTO log_entry
    (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
     actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
  VALUES (event_table_schema, event_table_name, pk_text(event_object_pk), event_object_repr, event_action, NULL, NULL,
          NULLIF(current_setting('auditlog.actor', true), ''),
          NULLIF(current_setting('auditlog.cid', true), ''),
          try_inet(NULLIF(current_setting('auditlog.remote_addr', true), '')),
          invoking_user(),
          NULLIF(current_setting('application_name'), ''),
          event_data,
          NULLIF(current_setting('auditlog.tenant', true), ''))
  RETURNING id INTO new_id;
  IF notify_turn(current_schema()) THEN
    PERFORM notify_entries(new_id, 1, event_table_schema, event_table_name, event_action);
  END IF;
  RETURN new_id;
END
$$;

CREATE OR REPLACE FUNCTION bypass_allowed(tbl_schema text, tbl_name text) RETURNS boolean
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
    IF notify_turn(current_schema()) THEN
      PERFORM notify_entries(lastval(), 1, tbl_schema, tbl_name, verb);
    END IF;
  END IF;
  RETURN granted;
END
$$;

CREATE OR REPLACE FUNCTION record_capture_ddl() RETURNS event_trigger
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
    IF notify_turn(current_schema()) THEN
      PERFORM notify_entries(lastval(), 1, r->>'table_schema', r->>'table_name', 'ddl');
    END IF;
  END LOOP;
END
$$;
