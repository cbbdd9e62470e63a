-- pg-auditlog: baseline entries (auditlog baseline, install --baseline).
-- Runs with search_path = <audit schema>, pg_catalog, pg_temp (see migration 1).
--
-- A `baseline` entry records a row that existed before the log, and time travel replays it
-- as the row's initial state, so it is a verb only pg-auditlog writes: log_event() refuses it
-- like the others, or anyone allowed to log an event could forge a row's initial state.
CREATE OR REPLACE FUNCTION reserved_action(verb text) RETURNS boolean
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
  SELECT verb = ANY (ARRAY['insert', 'update', 'delete', 'truncate', 'ddl', 'bypass', 'bypass_refused', 'flush', 'retention', 'baseline']);
END;
