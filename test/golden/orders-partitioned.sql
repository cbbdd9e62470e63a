-- public.orders: capture insert, update, delete, truncate (partitioned table: statement-level triggers on it and on every partition, entries under its name)
-- tracked columns: id, region, total
-- object_pk: id, region

CREATE OR REPLACE FUNCTION "auditlog"."capture_public_orders_b2852c9f"()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_nestloop = off
SET jit = off
AS $capture$
#variable_conflict use_variable
DECLARE
  -- The context, read once per statement.
  ctx_actor text := NULLIF(current_setting('auditlog.actor', true), '');
  ctx_cid text := NULLIF(current_setting('auditlog.cid', true), '');
  raw_remote_addr text := NULLIF(current_setting('auditlog.remote_addr', true), '');
  ctx_remote_addr inet;
  ctx_db_user text := "auditlog".invoking_user();
  ctx_application_name text := NULLIF(current_setting('application_name'), '');
  raw_data text := NULLIF(current_setting('auditlog.data', true), '');
  ctx_data jsonb;
  ctx_tenant text := NULLIF(current_setting('auditlog.tenant', true), '');
  entry_count bigint := 0;
  row_count bigint;
  tbl_schema text;
  tbl_name text;
BEGIN
  IF TG_OP = 'TRUNCATE' AND TG_WHEN = 'AFTER' THEN
    -- Every BEFORE TRUNCATE trigger of the statement has run: forget which tables it covered.
    DELETE FROM "auditlog".truncate_cover WHERE txid = pg_current_xact_id();
    RETURN NULL;
  END IF;
  -- Fired on the partitioned table or on one of its partitions: entries name the partitioned
  -- table (the root of the tree), under its current name.
  SELECT n.nspname, c.relname INTO tbl_schema, tbl_name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = coalesce(pg_partition_root(TG_RELID), TG_RELID);
  IF "auditlog".capture_disabled(tbl_schema, tbl_name) THEN RETURN NULL; END IF;
  IF raw_remote_addr IS NOT NULL OR raw_data IS NOT NULL THEN
    BEGIN
      ctx_remote_addr := raw_remote_addr::inet;
      ctx_data := raw_data::jsonb;
    EXCEPTION WHEN others THEN
      ctx_remote_addr := "auditlog".try_inet(raw_remote_addr);
      ctx_data := "auditlog".try_jsonb(raw_data);
    END;
  END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO "auditlog".log_entry
      (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
       actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
    SELECT tbl_schema, tbl_name, jsonb_build_array(n."id", n."region")::text, NULL, 'insert',
           jsonb_build_object(
               'id', jsonb_build_array(NULL, n."id"),
               'region', jsonb_build_array(NULL, n."region"),
               'total', jsonb_build_array(NULL, n."total")),
           NULL::jsonb,
           ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant
    FROM new_rows n;
    GET DIAGNOSTICS row_count = ROW_COUNT;
    entry_count := entry_count + row_count;
  ELSIF TG_OP = 'UPDATE' THEN
    -- A row that moves to another partition is deleted from one and inserted into the other.
    -- If a BEFORE INSERT trigger on the destination drops it, its old image has no new one and
    -- the transition tables are no longer in step. Equal counts: nothing was dropped (an UPDATE
    -- never adds a new image without an old one), pair by position. Otherwise pair by key.
    IF (SELECT count(*) FROM old_rows) = (SELECT count(*) FROM new_rows) THEN
      INSERT INTO "auditlog".log_entry
        (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
         actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
      SELECT tbl_schema, tbl_name, jsonb_build_array(n."id", n."region")::text, NULL, 'update',
           CASE WHEN o."id" IS DISTINCT FROM n."id"
             THEN jsonb_build_object('id', jsonb_build_array(o."id", n."id"))
             ELSE '{}'::jsonb END ||
           CASE WHEN o."region" IS DISTINCT FROM n."region"
             THEN jsonb_build_object('region', jsonb_build_array(o."region", n."region"))
             ELSE '{}'::jsonb END ||
           CASE WHEN o."total" IS DISTINCT FROM n."total"
             THEN jsonb_build_object('total', jsonb_build_array(o."total", n."total"))
             ELSE '{}'::jsonb END,
           NULL::jsonb,
           ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant
      -- PostgreSQL fills the old and new transition tables in step, so the k-th old row and the
      -- k-th new row are one row before and after, even when the statement changed its key.
      FROM (SELECT row_number() OVER () AS "auditlog_ordinal", * FROM old_rows) o
      JOIN (SELECT row_number() OVER () AS "auditlog_ordinal", * FROM new_rows) n ON n."auditlog_ordinal" = o."auditlog_ordinal"
      -- No tracked column changed: no entry. (Cheap comparisons here rather than a test of the
      -- diff: that would need a subquery, which costs more per statement and per row.)
      WHERE o."id" IS DISTINCT FROM n."id"
       OR o."region" IS DISTINCT FROM n."region"
       OR o."total" IS DISTINCT FROM n."total";
      GET DIAGNOSTICS row_count = ROW_COUNT;
      entry_count := entry_count + row_count;
    ELSE
      INSERT INTO "auditlog".log_entry
        (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
         actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
      SELECT tbl_schema, tbl_name, jsonb_build_array(n."id", n."region")::text, NULL, 'update',
           CASE WHEN o."id" IS DISTINCT FROM n."id"
             THEN jsonb_build_object('id', jsonb_build_array(o."id", n."id"))
             ELSE '{}'::jsonb END ||
           CASE WHEN o."region" IS DISTINCT FROM n."region"
             THEN jsonb_build_object('region', jsonb_build_array(o."region", n."region"))
             ELSE '{}'::jsonb END ||
           CASE WHEN o."total" IS DISTINCT FROM n."total"
             THEN jsonb_build_object('total', jsonb_build_array(o."total", n."total"))
             ELSE '{}'::jsonb END,
           NULL::jsonb,
           ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant
      FROM (SELECT jsonb_build_array(o."id", o."region")::text AS "auditlog_key", count(*) OVER (PARTITION BY jsonb_build_array(o."id", o."region")::text) AS "auditlog_key_count", o.* FROM old_rows o) o
      JOIN (SELECT jsonb_build_array(n."id", n."region")::text AS "auditlog_key", count(*) OVER (PARTITION BY jsonb_build_array(n."id", n."region")::text) AS "auditlog_key_count", n.* FROM new_rows n) n ON n."auditlog_key" = o."auditlog_key" AND o."auditlog_key_count" = 1 AND n."auditlog_key_count" = 1
      WHERE o."id" IS DISTINCT FROM n."id"
       OR o."region" IS DISTINCT FROM n."region"
       OR o."total" IS DISTINCT FROM n."total";
      GET DIAGNOSTICS row_count = ROW_COUNT;
      entry_count := entry_count + row_count;
      INSERT INTO "auditlog".log_entry
        (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
         actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
      SELECT tbl_schema, tbl_name, jsonb_build_array(o."id", o."region")::text, NULL, 'delete',
           jsonb_build_object(
               'id', jsonb_build_array(o."id", NULL),
               'region', jsonb_build_array(o."region", NULL),
               'total', jsonb_build_array(o."total", NULL)),
           NULL::jsonb,
           ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant
      FROM (SELECT jsonb_build_array(o."id", o."region")::text AS "auditlog_key", count(*) OVER (PARTITION BY jsonb_build_array(o."id", o."region")::text) AS "auditlog_key_count", o.* FROM old_rows o) o
      WHERE NOT (o."auditlog_key_count" = 1 AND EXISTS (SELECT 1 FROM (SELECT jsonb_build_array(n."id", n."region")::text AS "auditlog_key", count(*) OVER (PARTITION BY jsonb_build_array(n."id", n."region")::text) AS "auditlog_key_count", n.* FROM new_rows n) n WHERE n."auditlog_key" = o."auditlog_key" AND n."auditlog_key_count" = 1));
      GET DIAGNOSTICS row_count = ROW_COUNT;
      entry_count := entry_count + row_count;
      INSERT INTO "auditlog".log_entry
        (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
         actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
      SELECT tbl_schema, tbl_name, jsonb_build_array(n."id", n."region")::text, NULL, 'insert',
           jsonb_build_object(
               'id', jsonb_build_array(NULL, n."id"),
               'region', jsonb_build_array(NULL, n."region"),
               'total', jsonb_build_array(NULL, n."total")),
           NULL::jsonb,
           ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant
      FROM (SELECT jsonb_build_array(n."id", n."region")::text AS "auditlog_key", count(*) OVER (PARTITION BY jsonb_build_array(n."id", n."region")::text) AS "auditlog_key_count", n.* FROM new_rows n) n
      WHERE NOT (n."auditlog_key_count" = 1 AND EXISTS (SELECT 1 FROM (SELECT jsonb_build_array(o."id", o."region")::text AS "auditlog_key", count(*) OVER (PARTITION BY jsonb_build_array(o."id", o."region")::text) AS "auditlog_key_count", o.* FROM old_rows o) o WHERE o."auditlog_key" = n."auditlog_key" AND o."auditlog_key_count" = 1));
      GET DIAGNOSTICS row_count = ROW_COUNT;
      entry_count := entry_count + row_count;
    END IF;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO "auditlog".log_entry
      (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
       actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
    SELECT tbl_schema, tbl_name, jsonb_build_array(o."id", o."region")::text, NULL, 'delete',
           jsonb_build_object(
               'id', jsonb_build_array(o."id", NULL),
               'region', jsonb_build_array(o."region", NULL),
               'total', jsonb_build_array(o."total", NULL)),
           NULL::jsonb,
           ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant
    FROM old_rows o;
    GET DIAGNOSTICS row_count = ROW_COUNT;
    entry_count := entry_count + row_count;
  ELSIF TG_OP = 'TRUNCATE' THEN
    DELETE FROM "auditlog".truncate_cover WHERE txid = pg_current_xact_id() AND relid = TG_RELID;
    IF FOUND THEN
      RETURN NULL;  -- covered by a table above it, truncated by the same statement
    END IF;
    INSERT INTO "auditlog".truncate_cover (relid)
    SELECT relid FROM pg_partition_tree(TG_RELID) WHERE relid <> TG_RELID;
    IF pg_partition_root(TG_RELID) = TG_RELID THEN
      INSERT INTO "auditlog".log_entry
        (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
         actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
      VALUES (tbl_schema, tbl_name, NULL, NULL, 'truncate', NULL, NULL, ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant);
    ELSE
      EXECUTE $q$
        INSERT INTO "auditlog".log_entry
          (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
           actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
        SELECT $1, $2, jsonb_build_array(o."id", o."region")::text, NULL, 'delete',
               jsonb_build_object(
                   'id', jsonb_build_array(o."id", NULL),
                   'region', jsonb_build_array(o."region", NULL),
                   'total', jsonb_build_array(o."total", NULL)),
               NULL::jsonb,
               $3, $4, $5, $6, $7, $8, $9
        FROM $q$ || TG_RELID::regclass::text || ' o'
        USING tbl_schema, tbl_name, ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant;
    END IF;
    GET DIAGNOSTICS entry_count = ROW_COUNT;
  END IF;
  IF entry_count > 0 AND "auditlog".notify_turn('auditlog') THEN
    PERFORM "auditlog".notify_entries(lastval(), entry_count, tbl_schema, tbl_name, lower(TG_OP));
  END IF;
  RETURN NULL;
END
$capture$;

CREATE TRIGGER "auditlog_insert_415fdfa0"
  AFTER INSERT ON "public"."orders"
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_update_415fdfa0"
  AFTER UPDATE ON "public"."orders"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_delete_415fdfa0"
  AFTER DELETE ON "public"."orders"
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_truncate_415fdfa0"
  BEFORE TRUNCATE ON "public"."orders"
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_truncate_end_415fdfa0"
  AFTER TRUNCATE ON "public"."orders"
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

COMMENT ON FUNCTION "auditlog"."capture_public_orders_b2852c9f"() IS 'pg-auditlog 6d7dcf9bf50e';
COMMENT ON TRIGGER "auditlog_insert_415fdfa0" ON "public"."orders" IS 'pg-auditlog 6d7dcf9bf50e';
COMMENT ON TRIGGER "auditlog_update_415fdfa0" ON "public"."orders" IS 'pg-auditlog 6d7dcf9bf50e';
COMMENT ON TRIGGER "auditlog_delete_415fdfa0" ON "public"."orders" IS 'pg-auditlog 6d7dcf9bf50e';
COMMENT ON TRIGGER "auditlog_truncate_415fdfa0" ON "public"."orders" IS 'pg-auditlog 6d7dcf9bf50e';
COMMENT ON TRIGGER "auditlog_truncate_end_415fdfa0" ON "public"."orders" IS 'pg-auditlog 6d7dcf9bf50e';

-- partition public.orders_eu: writes aimed at it are logged as public.orders

CREATE TRIGGER "auditlog_insert_415fdfa0"
  AFTER INSERT ON "public"."orders_eu"
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_update_415fdfa0"
  AFTER UPDATE ON "public"."orders_eu"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_delete_415fdfa0"
  AFTER DELETE ON "public"."orders_eu"
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_truncate_415fdfa0"
  BEFORE TRUNCATE ON "public"."orders_eu"
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_truncate_end_415fdfa0"
  AFTER TRUNCATE ON "public"."orders_eu"
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

COMMENT ON TRIGGER "auditlog_insert_415fdfa0" ON "public"."orders_eu" IS 'pg-auditlog 6d7dcf9bf50e';

COMMENT ON TRIGGER "auditlog_update_415fdfa0" ON "public"."orders_eu" IS 'pg-auditlog 6d7dcf9bf50e';

COMMENT ON TRIGGER "auditlog_delete_415fdfa0" ON "public"."orders_eu" IS 'pg-auditlog 6d7dcf9bf50e';

COMMENT ON TRIGGER "auditlog_truncate_415fdfa0" ON "public"."orders_eu" IS 'pg-auditlog 6d7dcf9bf50e';

COMMENT ON TRIGGER "auditlog_truncate_end_415fdfa0" ON "public"."orders_eu" IS 'pg-auditlog 6d7dcf9bf50e';

-- partition public.orders_us: writes aimed at it are logged as public.orders

CREATE TRIGGER "auditlog_insert_415fdfa0"
  AFTER INSERT ON "public"."orders_us"
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_update_415fdfa0"
  AFTER UPDATE ON "public"."orders_us"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_delete_415fdfa0"
  AFTER DELETE ON "public"."orders_us"
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_truncate_415fdfa0"
  BEFORE TRUNCATE ON "public"."orders_us"
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

CREATE TRIGGER "auditlog_truncate_end_415fdfa0"
  AFTER TRUNCATE ON "public"."orders_us"
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_orders_b2852c9f"();

COMMENT ON TRIGGER "auditlog_insert_415fdfa0" ON "public"."orders_us" IS 'pg-auditlog 6d7dcf9bf50e';

COMMENT ON TRIGGER "auditlog_update_415fdfa0" ON "public"."orders_us" IS 'pg-auditlog 6d7dcf9bf50e';

COMMENT ON TRIGGER "auditlog_delete_415fdfa0" ON "public"."orders_us" IS 'pg-auditlog 6d7dcf9bf50e';

COMMENT ON TRIGGER "auditlog_truncate_415fdfa0" ON "public"."orders_us" IS 'pg-auditlog 6d7dcf9bf50e';

COMMENT ON TRIGGER "auditlog_truncate_end_415fdfa0" ON "public"."orders_us" IS 'pg-auditlog 6d7dcf9bf50e';
