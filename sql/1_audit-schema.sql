-- pg-auditlog audit schema, migration 1.
-- The installer runs this with search_path = <audit schema>, pg_catalog, pg_temp, so every
-- unqualified name below lands in the audit schema chosen in the config (default "auditlog").
-- Released migrations are never edited: a change is a new numbered file.

-- One row per captured change. Its name and these column names are public API.
CREATE TABLE log_entry (
  id               bigint      GENERATED ALWAYS AS IDENTITY,
  ts               timestamptz NOT NULL DEFAULT transaction_timestamp(),
  txid             xid8        NOT NULL DEFAULT pg_current_xact_id(),
  table_schema     text        COLLATE "C",
  table_name       text        COLLATE "C",
  object_pk        text        COLLATE "C",
  object_repr      text,
  action           text        COLLATE "C" NOT NULL,
  changes          jsonb,
  snapshot         jsonb,
  actor            text        COLLATE "C",
  cid              text        COLLATE "C",
  remote_addr      inet,
  db_user          text        NOT NULL,
  application_name text,
  additional_data  jsonb,
  tenant_id        text        COLLATE "C",
  CONSTRAINT log_entry_pkey PRIMARY KEY (id)
);

-- Identifier-like columns compare bytewise (COLLATE "C"): index inserts and lookups skip the
-- locale's collation rules, several times cheaper per entry; sorting them is by code point.
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

-- Stand-in capture after ALTER TABLE. A generated capture function names its columns, so a
-- dropped or renamed column would make every write to the table fail. When the columns of an
-- audited table change, the DDL watch below swaps its function for one that calls this: slower
-- (the row goes through to_jsonb), but it cannot fail on a missing column and loses nothing.
-- Columns added since install are recorded masked (a renamed secret must not leak) until
-- `auditlog install` regenerates the specific function from the config.
CREATE FUNCTION generic_capture(op text, tbl_schema text, tbl_name text, old_row jsonb, new_row jsonb)
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
END
$$;

-- The DDL watch: an event trigger (created by the installer when it runs as a superuser) calls
-- this at the end of every ALTER TABLE. It must never make the user's DDL fail.
CREATE FUNCTION fall_back_after_ddl() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $watch$
DECLARE
  t record;
  trg record;
  now_columns jsonb;
BEGIN
  FOR t IN
    SELECT DISTINCT tt.table_schema, tt.table_name, tt.function_name, tt.config, c.oid AS rel
    FROM pg_event_trigger_ddl_commands() cmd
    JOIN pg_class c ON c.oid = cmd.objid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN tracked_table tt ON tt.table_schema = n.nspname AND tt.table_name = c.relname
    WHERE cmd.classid = 'pg_class'::regclass
  LOOP
    SELECT jsonb_agg(a.attname ORDER BY a.attnum) INTO now_columns
    FROM pg_attribute a WHERE a.attrelid = t.rel AND a.attnum > 0 AND NOT a.attisdropped;
    CONTINUE WHEN now_columns = t.config->'allColumns';

    -- Row-level triggers pass OLD/NEW; statement-level ones their transition tables, whose
    -- k-th old and k-th new rows are one row before and after.
    EXECUTE format($sql$
CREATE OR REPLACE FUNCTION %1$I.%2$I() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_nestloop = off
AS $body$
BEGIN
  IF TG_LEVEL = 'ROW' THEN
    PERFORM %1$I.generic_capture(TG_OP, %3$L, %4$L,
      CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END,
      CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END);
  ELSIF TG_OP = 'INSERT' THEN
    PERFORM %1$I.generic_capture(TG_OP, %3$L, %4$L, NULL, to_jsonb(n)) FROM new_rows n;
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM %1$I.generic_capture(TG_OP, %3$L, %4$L, to_jsonb(o), NULL) FROM old_rows o;
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM %1$I.generic_capture(TG_OP, %3$L, %4$L, o.r, n.r)
    FROM (SELECT row_number() OVER () AS k, to_jsonb(x) AS r FROM old_rows x) o
    JOIN (SELECT row_number() OVER () AS k, to_jsonb(x) AS r FROM new_rows x) n ON n.k = o.k;
  ELSE
    PERFORM %1$I.generic_capture(TG_OP, %3$L, %4$L, NULL, NULL);
  END IF;
  RETURN NULL;
END
$body$
$sql$, current_schema(), t.function_name, t.table_schema, t.table_name);
    -- status reads these comments: the table now shows as outdated until reinstalled.
    EXECUTE format('COMMENT ON FUNCTION %I.%I() IS %L', current_schema(), t.function_name, 'pg-auditlog fallback');
    FOR trg IN
      SELECT tg.tgname FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
      WHERE tg.tgrelid = t.rel AND p.proname = t.function_name AND p.pronamespace = current_schema()::regnamespace
    LOOP
      EXECUTE format('COMMENT ON TRIGGER %I ON %I.%I IS %L', trg.tgname, t.table_schema, t.table_name, 'pg-auditlog fallback');
    END LOOP;
    RAISE WARNING 'pg-auditlog: the columns of %.% changed; its capture uses the generic fallback until you run auditlog install',
      quote_ident(t.table_schema), quote_ident(t.table_name);
  END LOOP;
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'pg-auditlog: could not adapt capture after ALTER TABLE (%); run auditlog install now', SQLERRM;
END
$watch$;
