-- pg-auditlog migration 7: partitioned tables and renamed tables.
-- Runs with search_path = <audit schema>, pg_catalog, pg_temp (see migration 1).
--
-- A partitioned table's capture is a statement-level trigger on it and on each of its
-- partitions (PostgreSQL fires statement triggers only on the table a statement names). The
-- DDL watch below adds those triggers to partitions created or attached later, removes them
-- from detached ones, and follows a renamed audited table.

-- Which table an installed capture belongs to, by identity: names change, the oid does not.
ALTER TABLE tracked_table ADD COLUMN table_oid oid;
UPDATE tracked_table tt SET table_oid = c.oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = tt.table_schema AND c.relname = tt.table_name;

-- TRUNCATE of a partitioned table fires the TRUNCATE triggers of every partition below it. The
-- first BEFORE TRUNCATE trigger of a subtree records the partitions below it here; theirs then
-- write nothing. Rows live for one statement (an AFTER TRUNCATE trigger deletes them) and are
-- keyed by transaction, so a row left behind can never cover a later transaction's TRUNCATE.
-- Only capture functions (running as the audit owner) write it: nobody can mark a partition
-- as covered to make its TRUNCATE go unrecorded.
CREATE UNLOGGED TABLE truncate_cover (
  txid  xid8 NOT NULL DEFAULT pg_current_xact_id(),
  relid oid  NOT NULL
);
CREATE INDEX truncate_cover_idx ON truncate_cover (txid, relid);

-- The DDL watch for partitions and renames: an event trigger (created by the installer when it
-- runs as a superuser) calls this at the end of every CREATE TABLE and ALTER TABLE. It must
-- never make the user's DDL fail: each step warns instead.
CREATE FUNCTION follow_table_ddl() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $watch$
DECLARE
  t record;
  trg record;
BEGIN
  -- 1. A detached partition keeps the triggers it had: its writes are no longer the audited
  --    table's. Drop every capture trigger on a table outside the tree it was installed for.
  BEGIN
    FOR trg IN
      SELECT tg.tgname, n.nspname, c.relname
      FROM tracked_table tt
      JOIN pg_proc p ON p.proname = tt.function_name AND p.pronamespace = current_schema()::regnamespace
      JOIN pg_trigger tg ON tg.tgfoid = p.oid AND tg.tgparentid = 0 AND NOT tg.tgisinternal
      JOIN pg_class c ON c.oid = tg.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE tt.table_oid IS NOT NULL AND tg.tgrelid <> tt.table_oid
        AND NOT EXISTS (SELECT 1 FROM pg_partition_tree(tt.table_oid) x WHERE x.relid = tg.tgrelid)
    LOOP
      EXECUTE format('DROP TRIGGER %I ON %I.%I', trg.tgname, trg.nspname, trg.relname);
    END LOOP;
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg-auditlog: could not remove capture from a detached partition (%); run auditlog install', SQLERRM;
  END;

  -- 2. Renamed (or moved to another schema): entries already carry the table's current name
  --    (capture reads it when it fires); keep the record of what is installed in step, and log it.
  BEGIN
    FOR t IN
      SELECT tt.table_schema, tt.table_name, n.nspname AS now_schema, c.relname AS now_name
      FROM tracked_table tt
      JOIN pg_class c ON c.oid = tt.table_oid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname, c.relname) <> (tt.table_schema, tt.table_name)
    LOOP
      UPDATE tracked_table SET table_schema = t.now_schema, table_name = t.now_name
      WHERE table_schema = t.table_schema AND table_name = t.table_name;
      INSERT INTO log_entry (table_schema, table_name, action, actor, cid, remote_addr, db_user,
                             application_name, additional_data, tenant_id)
      VALUES (t.now_schema, t.now_name, 'ddl',
              NULLIF(current_setting('auditlog.actor', true), ''),
              NULLIF(current_setting('auditlog.cid', true), ''),
              try_inet(NULLIF(current_setting('auditlog.remote_addr', true), '')),
              invoking_user(),
              NULLIF(current_setting('application_name'), ''),
              jsonb_build_object('event', 'renamed', 'object_type', 'table',
                                 'renamed_from', jsonb_build_object('table_schema', t.table_schema, 'table_name', t.table_name),
                                 'command', TG_TAG),
              NULLIF(current_setting('auditlog.tenant', true), ''));
      IF notify_turn(current_schema()) THEN
        PERFORM notify_entries(lastval(), 1, t.now_schema, t.now_name, 'ddl');
      END IF;
    END LOOP;
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg-auditlog: could not follow a renamed audited table (%); run auditlog install', SQLERRM;
  END;

  -- 3. Partitions created or attached since install get the statement-level triggers of the
  --    audited table they belong to: the same name, function, events and transition tables.
  BEGIN
    FOR trg IN
      SELECT tg.tgname, tg.tgtype, tg.tgoldtable, tg.tgnewtable, pn.nspname AS fn_schema, p.proname AS fn_name, p.proowner AS fn_owner,
             pg_catalog.obj_description(tg.oid, 'pg_trigger') AS comment, n.nspname, c.relname
      FROM tracked_table tt
      JOIN pg_proc p ON p.proname = tt.function_name AND p.pronamespace = current_schema()::regnamespace
      JOIN pg_namespace pn ON pn.oid = p.pronamespace
      JOIN pg_trigger tg ON tg.tgrelid = tt.table_oid AND tg.tgfoid = p.oid AND tg.tgparentid = 0
                         AND NOT tg.tgisinternal AND (tg.tgtype & 1) = 0  -- statement level
      CROSS JOIN LATERAL pg_partition_tree(tt.table_oid) part
      JOIN pg_class c ON c.oid = part.relid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE part.relid <> tt.table_oid
        AND NOT EXISTS (SELECT 1 FROM pg_trigger x WHERE x.tgrelid = part.relid AND x.tgname = tg.tgname)
    LOOP
      EXECUTE format('CREATE TRIGGER %I %s %s ON %I.%I%s FOR EACH STATEMENT EXECUTE FUNCTION %I.%I()',
        trg.tgname,
        CASE WHEN trg.tgtype & 2 <> 0 THEN 'BEFORE' ELSE 'AFTER' END,
        concat_ws(' OR ', CASE WHEN trg.tgtype & 4 <> 0 THEN 'INSERT' END, CASE WHEN trg.tgtype & 8 <> 0 THEN 'DELETE' END,
                          CASE WHEN trg.tgtype & 16 <> 0 THEN 'UPDATE' END, CASE WHEN trg.tgtype & 32 <> 0 THEN 'TRUNCATE' END),
        trg.nspname, trg.relname,
        CASE WHEN trg.tgoldtable IS NULL AND trg.tgnewtable IS NULL THEN ''
             ELSE ' REFERENCING' || CASE WHEN trg.tgoldtable IS NULL THEN '' ELSE format(' OLD TABLE AS %I', trg.tgoldtable) END
                                 || CASE WHEN trg.tgnewtable IS NULL THEN '' ELSE format(' NEW TABLE AS %I', trg.tgnewtable) END END,
        trg.fn_schema, trg.fn_name);
      EXECUTE format('COMMENT ON TRIGGER %I ON %I.%I IS %L', trg.tgname, trg.nspname, trg.relname, trg.comment);
      -- TRUNCATE of a partition logs the rows it removes, read from the partition itself (there
      -- is no transition table for TRUNCATE): the role capture runs as needs to read it.
      IF trg.tgtype & 32 <> 0 AND NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = trg.fn_owner) THEN
        EXECUTE format('GRANT SELECT ON %I.%I TO %I', trg.nspname, trg.relname, pg_get_userbyid(trg.fn_owner));
      END IF;
    END LOOP;
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg-auditlog: could not add capture to a new partition (%); writes aimed at it are not recorded until you run auditlog install', SQLERRM;
  END;
END
$watch$;
