-- public.users: capture insert, update, delete, truncate (statement mode)
-- tracked columns: id, email, ssn (masked), prefs
-- object_pk: id; snapshot: yes

CREATE OR REPLACE FUNCTION "auditlog"."capture_public_users_14447575"()
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
  entry_count bigint;
  old_row record;
  new_row record;
  diff jsonb;
BEGIN
  IF "auditlog".capture_disabled(TG_TABLE_SCHEMA, TG_TABLE_NAME) THEN RETURN NULL; END IF;
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
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, n."id"::text, n."email"::text, 'insert',
           jsonb_build_object(
               'id', jsonb_build_array(NULL, n."id"),
               'email', jsonb_build_array(NULL, n."email"),
               'ssn', jsonb_build_array(NULL, CASE WHEN n."ssn" IS NULL THEN NULL ELSE '[masked]' END),
               'prefs', jsonb_build_array(NULL, n."prefs")),
           jsonb_build_object(
               'id', n."id",
               'email', n."email",
               'ssn', CASE WHEN n."ssn" IS NULL THEN NULL ELSE '[masked]' END,
               'prefs', n."prefs"),
           ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant
    FROM new_rows n;
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM FROM old_rows LIMIT 2;
    GET DIAGNOSTICS entry_count = ROW_COUNT;
    IF entry_count = 0 THEN
      RETURN NULL;
    ELSIF entry_count = 1 THEN
      SELECT * INTO old_row FROM old_rows;
      SELECT * INTO new_row FROM new_rows;
      diff := '{}'::jsonb;
      IF old_row."id" IS DISTINCT FROM new_row."id" THEN
        diff := diff || jsonb_build_object('id', jsonb_build_array(old_row."id", new_row."id"));
      END IF;
      IF old_row."email" IS DISTINCT FROM new_row."email" THEN
        diff := diff || jsonb_build_object('email', jsonb_build_array(old_row."email", new_row."email"));
      END IF;
      IF old_row."ssn" IS DISTINCT FROM new_row."ssn" THEN
        diff := diff || jsonb_build_object('ssn', jsonb_build_array(CASE WHEN old_row."ssn" IS NULL THEN NULL ELSE '[masked]' END, CASE WHEN new_row."ssn" IS NULL THEN NULL ELSE '[masked]' END));
      END IF;
      IF pg_catalog.record_image_ne(ROW(old_row."prefs"::pg_catalog.jsonb), ROW(new_row."prefs"::pg_catalog.jsonb)) THEN
        diff := diff || jsonb_build_object('prefs', jsonb_build_array(old_row."prefs", new_row."prefs"));
      END IF;
      IF diff = '{}'::jsonb THEN
        RETURN NULL;  -- no tracked column changed: no entry
      END IF;
    INSERT INTO "auditlog".log_entry
      (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
       actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
    VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, new_row."id"::text, new_row."email"::text, 'update', diff,
            jsonb_build_object(
                'id', new_row."id",
                'email', new_row."email",
                'ssn', CASE WHEN new_row."ssn" IS NULL THEN NULL ELSE '[masked]' END,
                'prefs', new_row."prefs"),
            ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant);
    ELSE
      INSERT INTO "auditlog".log_entry
        (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
         actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
      SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, n."id"::text, n."email"::text, 'update',
           CASE WHEN o."id" IS DISTINCT FROM n."id"
             THEN jsonb_build_object('id', jsonb_build_array(o."id", n."id"))
             ELSE '{}'::jsonb END ||
           CASE WHEN o."email" IS DISTINCT FROM n."email"
             THEN jsonb_build_object('email', jsonb_build_array(o."email", n."email"))
             ELSE '{}'::jsonb END ||
           CASE WHEN o."ssn" IS DISTINCT FROM n."ssn"
             THEN jsonb_build_object('ssn', jsonb_build_array(CASE WHEN o."ssn" IS NULL THEN NULL ELSE '[masked]' END, CASE WHEN n."ssn" IS NULL THEN NULL ELSE '[masked]' END))
             ELSE '{}'::jsonb END ||
           CASE WHEN pg_catalog.record_image_ne(ROW(o."prefs"::pg_catalog.jsonb), ROW(n."prefs"::pg_catalog.jsonb))
             THEN jsonb_build_object('prefs', jsonb_build_array(o."prefs", n."prefs"))
             ELSE '{}'::jsonb END,
           jsonb_build_object(
               'id', n."id",
               'email', n."email",
               'ssn', CASE WHEN n."ssn" IS NULL THEN NULL ELSE '[masked]' END,
               'prefs', n."prefs"),
           ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant
      -- PostgreSQL fills the old and new transition tables in step, so the k-th old row and the
      -- k-th new row are one row before and after, even when the statement changed its key.
      FROM (SELECT row_number() OVER () AS "auditlog_ordinal", * FROM old_rows) o
      JOIN (SELECT row_number() OVER () AS "auditlog_ordinal", * FROM new_rows) n ON n."auditlog_ordinal" = o."auditlog_ordinal"
      -- No tracked column changed: no entry. (Cheap comparisons here rather than a test of the
      -- diff: that would need a subquery, which costs more per statement and per row.)
      WHERE o."id" IS DISTINCT FROM n."id"
       OR o."email" IS DISTINCT FROM n."email"
       OR o."ssn" IS DISTINCT FROM n."ssn"
       OR pg_catalog.record_image_ne(ROW(o."prefs"::pg_catalog.jsonb), ROW(n."prefs"::pg_catalog.jsonb));
    END IF;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO "auditlog".log_entry
      (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
       actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, o."id"::text, o."email"::text, 'delete',
           jsonb_build_object(
               'id', jsonb_build_array(o."id", NULL),
               'email', jsonb_build_array(o."email", NULL),
               'ssn', jsonb_build_array(CASE WHEN o."ssn" IS NULL THEN NULL ELSE '[masked]' END, NULL),
               'prefs', jsonb_build_array(o."prefs", NULL)),
           jsonb_build_object(
               'id', o."id",
               'email', o."email",
               'ssn', CASE WHEN o."ssn" IS NULL THEN NULL ELSE '[masked]' END,
               'prefs', o."prefs"),
           ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant
    FROM old_rows o;
  ELSIF TG_OP = 'TRUNCATE' THEN
    INSERT INTO "auditlog".log_entry
      (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
       actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
    VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, NULL, NULL, 'truncate', NULL, NULL, ctx_actor, ctx_cid, ctx_remote_addr, ctx_db_user, ctx_application_name, ctx_data, ctx_tenant);
  END IF;
  GET DIAGNOSTICS entry_count = ROW_COUNT;
  IF entry_count > 0 AND "auditlog".notify_turn('auditlog') THEN
    PERFORM "auditlog".notify_entries(lastval(), entry_count, TG_TABLE_SCHEMA, TG_TABLE_NAME, lower(TG_OP));
  END IF;
  RETURN NULL;
END
$capture$;

CREATE TRIGGER "auditlog_insert_18f965ef"
  AFTER INSERT ON "public"."users"
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_users_14447575"();

CREATE TRIGGER "auditlog_update_18f965ef"
  AFTER UPDATE ON "public"."users"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_users_14447575"();

CREATE TRIGGER "auditlog_delete_18f965ef"
  AFTER DELETE ON "public"."users"
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_users_14447575"();

CREATE TRIGGER "auditlog_truncate_18f965ef"
  AFTER TRUNCATE ON "public"."users"
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_users_14447575"();

COMMENT ON FUNCTION "auditlog"."capture_public_users_14447575"() IS 'pg-auditlog 67b0946b3518';
COMMENT ON TRIGGER "auditlog_insert_18f965ef" ON "public"."users" IS 'pg-auditlog 67b0946b3518';
COMMENT ON TRIGGER "auditlog_update_18f965ef" ON "public"."users" IS 'pg-auditlog 67b0946b3518';
COMMENT ON TRIGGER "auditlog_delete_18f965ef" ON "public"."users" IS 'pg-auditlog 67b0946b3518';
COMMENT ON TRIGGER "auditlog_truncate_18f965ef" ON "public"."users" IS 'pg-auditlog 67b0946b3518';
