-- pg-auditlog migration 8: verbs only the system writes, and capture that can only append.
-- Runs with search_path = <audit schema>, pg_catalog, pg_temp (see migration 1).

-- The verbs pg-auditlog writes itself. log_event() refuses them, so nobody can forge a change
-- that time travel would replay, a DDL record, a bypass record or a retention record.
CREATE FUNCTION reserved_action(verb text) RETURNS boolean
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
  SELECT verb = ANY (ARRAY['insert', 'update', 'delete', 'truncate', 'ddl', 'bypass', 'bypass_refused', 'flush', 'retention']);
END;

-- Writes one manual entry with the session context of the calling transaction. Not SECURITY
-- DEFINER: called by log_event() (which runs as the audit owner) and by flush(), whose caller
-- may already write the log. Nobody else has EXECUTE on it (install revokes it from PUBLIC).
CREATE FUNCTION append_event(
  event_action text,
  event_table_schema text,
  event_table_name text,
  event_object_pk jsonb,
  event_object_repr text,
  event_data jsonb
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
  session_data jsonb := try_jsonb(NULLIF(current_setting('auditlog.data', true), ''));
  new_id bigint;
BEGIN
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
BEGIN
  IF event_action IS NULL OR event_action !~ '^[a-z][a-z0-9_.:-]{0,62}$' THEN
    RAISE EXCEPTION 'invalid event action %: use lower-case letters, digits, "_", ".", ":" or "-", starting with a letter, at most 63 characters', quote_nullable(event_action)
      USING ERRCODE = '22023';
  END IF;
  IF reserved_action(event_action) THEN
    RAISE EXCEPTION 'event action "%" is reserved: pg-auditlog writes it itself', event_action
      USING ERRCODE = '22023', HINT = 'use another verb, e.g. "access", "export", "login"';
  END IF;
  IF event_data IS NOT NULL AND jsonb_typeof(event_data) <> 'object' THEN
    RAISE EXCEPTION 'event data must be a JSON object' USING ERRCODE = '22023';
  END IF;
  IF (event_table_name IS NULL) <> (event_table_schema IS NULL) OR (event_object_pk IS NOT NULL AND event_table_name IS NULL) THEN
    RAISE EXCEPTION 'an event names a table with both schema and name, and an object only together with its table' USING ERRCODE = '22023';
  END IF;
  RETURN append_event(event_action, event_table_schema, event_table_name, event_object_pk, event_object_repr, event_data);
END
$$;

-- Capture functions now run as a writer role that may only append to the log (see
-- src/security/roles.ts). Recording a bypass reads the log (has this transaction recorded one
-- yet?), which the writer may not: this one function keeps running as the audit owner. It
-- handles only text settings and role names, no value of an audited table.
ALTER FUNCTION bypass_allowed(text, text) SECURITY DEFINER;
