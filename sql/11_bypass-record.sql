-- pg-auditlog migration: which transactions have recorded their bypass, in a table of its own.
-- Runs with search_path = <audit schema>, pg_catalog, pg_temp (see migration 1).
--
-- While capture is switched off (auditlog.disable), bypass_allowed() runs for every statement
-- and writes one bypass (or bypass_refused) entry per transaction. It found out whether it had
-- already done so through the partial index log_entry_bypass_idx, which every entry written
-- paid for: capture opens each index of the log and prepares its predicate once per statement,
-- about 8,800 instructions of a single-row write (issue #13). The marker now lives here, and
-- the index goes.
--
-- Only bypass_allowed() (SECURITY DEFINER, the audit owner) writes it; nobody else may, or a
-- transaction could mark its bypass as recorded and switch capture off without a trace. A row
-- only matters while its transaction runs (xid8 never wraps around, so it cannot name a later
-- one): UNLOGGED is enough, and rows of ended transactions are removed as new ones come.

CREATE UNLOGGED TABLE bypass_recorded (
  txid   xid8 NOT NULL DEFAULT pg_current_xact_id(),
  action text COLLATE "C" NOT NULL,
  PRIMARY KEY (txid, action)
);

COMMENT ON TABLE bypass_recorded IS 'pg-auditlog: transactions that have written their bypass entry (see bypass_allowed()).';

DROP INDEX log_entry_bypass_idx;

CREATE OR REPLACE FUNCTION bypass_allowed(tbl_schema text, tbl_name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
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
  INSERT INTO bypass_recorded (action) VALUES (verb) ON CONFLICT DO NOTHING;
  IF FOUND THEN
    -- The first statement of this transaction with capture off (or refused): its entry.
    -- Markers of transactions that have ended are of no use any more. (SKIP LOCKED: another
    -- bypassing transaction removing the same ones must never make this one wait.)
    DELETE FROM bypass_recorded b
    USING (SELECT ctid FROM bypass_recorded
           WHERE pg_xact_status(txid) IS DISTINCT FROM 'in progress'
           FOR UPDATE SKIP LOCKED) AS ended
    WHERE b.ctid = ended.ctid;
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
