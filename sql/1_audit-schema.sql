-- pg-auditlog audit schema, migration 1.
-- The installer runs this with search_path = <audit schema>, pg_catalog, pg_temp, so every
-- unqualified name below lands in the audit schema chosen in the config (default "auditlog").
-- Released migrations are never edited: a change is a new numbered file.

-- One row per captured change. Its name and these column names are public API.
CREATE TABLE log_entry (
  id               bigint      GENERATED ALWAYS AS IDENTITY,
  ts               timestamptz NOT NULL DEFAULT transaction_timestamp(),
  txid             xid8        NOT NULL DEFAULT pg_current_xact_id(),
  table_schema     text,
  table_name       text,
  object_pk        text,
  object_repr      text,
  action           text        NOT NULL,
  changes          jsonb,
  snapshot         jsonb,
  actor            text,
  cid              text,
  remote_addr      inet,
  db_user          text        NOT NULL,
  application_name text,
  additional_data  jsonb,
  tenant_id        text,
  CONSTRAINT log_entry_pkey PRIMARY KEY (id)
);

COMMENT ON TABLE log_entry IS 'pg-auditlog: one row per audited change. Column names are a public, stable contract.';

-- History of one object, newest first.
CREATE INDEX log_entry_object_idx ON log_entry (table_name, object_pk, id);
-- Time ranges: rows arrive in time order, so a BRIN index costs almost nothing per row.
CREATE INDEX log_entry_ts_idx ON log_entry USING brin (ts);

-- What the installer put in place, per audited table.
CREATE TABLE tracked_table (
  table_schema   text        NOT NULL,
  table_name     text        NOT NULL,
  config         jsonb       NOT NULL,
  function_name  text        NOT NULL,
  definition_hash text       NOT NULL,
  installed_at   timestamptz NOT NULL DEFAULT now(),
  installed_by   text        NOT NULL DEFAULT current_user,
  CONSTRAINT tracked_table_pkey PRIMARY KEY (table_schema, table_name)
);

-- The role that issued the statement. Inside a SECURITY DEFINER function current_user is the
-- function's owner, but the "role" setting still shows the caller's SET ROLE.
-- No SET clause, so the planner can inline it into the trigger functions.
CREATE FUNCTION invoking_user() RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END
$$;

-- Context values come from settings anyone can set: a malformed one must never fail the
-- user's write. An invalid address is dropped; invalid JSON is kept as a JSON string.
CREATE FUNCTION try_inet(value text) RETURNS inet
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path FROM CURRENT
AS $$
BEGIN
  RETURN value::inet;
EXCEPTION WHEN others THEN
  RETURN NULL;
END
$$;

CREATE FUNCTION try_jsonb(value text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path FROM CURRENT
AS $$
BEGIN
  RETURN value::jsonb;
EXCEPTION WHEN others THEN
  RETURN to_jsonb(value);
END
$$;
