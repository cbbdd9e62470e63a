-- public.users: capture insert, update, delete, truncate (row mode)
-- tracked columns: id, email, ssn (masked), prefs
-- object_pk: id; snapshot: yes

CREATE OR REPLACE FUNCTION "auditlog"."capture_public_users_14447575"()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $capture$
DECLARE
  diff jsonb;
  row_pk text;
  row_repr text;
  row_snapshot jsonb;
  raw_remote_addr text := NULLIF(current_setting('auditlog.remote_addr', true), '');
  ctx_remote_addr inet;
  raw_data text := NULLIF(current_setting('auditlog.data', true), '');
  ctx_data jsonb;
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
    diff := jsonb_build_object(
        'id', jsonb_build_array(NULL, NEW."id"),
        'email', jsonb_build_array(NULL, NEW."email"),
        'ssn', jsonb_build_array(NULL, CASE WHEN NEW."ssn" IS NULL THEN NULL ELSE '[masked]' END),
        'prefs', jsonb_build_array(NULL, NEW."prefs"));
    row_pk := NEW."id"::text;
    row_repr := NEW."email"::text;
    row_snapshot := jsonb_build_object(
        'id', NEW."id",
        'email', NEW."email",
        'ssn', CASE WHEN NEW."ssn" IS NULL THEN NULL ELSE '[masked]' END,
        'prefs', NEW."prefs");
  ELSIF TG_OP = 'UPDATE' THEN
    diff := '{}'::jsonb;
    IF OLD."id" IS DISTINCT FROM NEW."id" THEN
      diff := diff || jsonb_build_object('id', jsonb_build_array(OLD."id", NEW."id"));
    END IF;
    IF OLD."email" IS DISTINCT FROM NEW."email" THEN
      diff := diff || jsonb_build_object('email', jsonb_build_array(OLD."email", NEW."email"));
    END IF;
    IF OLD."ssn" IS DISTINCT FROM NEW."ssn" THEN
      diff := diff || jsonb_build_object('ssn', jsonb_build_array(CASE WHEN OLD."ssn" IS NULL THEN NULL ELSE '[masked]' END, CASE WHEN NEW."ssn" IS NULL THEN NULL ELSE '[masked]' END));
    END IF;
    IF pg_catalog.record_image_ne(ROW(OLD."prefs"::pg_catalog.jsonb), ROW(NEW."prefs"::pg_catalog.jsonb)) THEN
      diff := diff || jsonb_build_object('prefs', jsonb_build_array(OLD."prefs", NEW."prefs"));
    END IF;
    IF diff = '{}'::jsonb THEN
      RETURN NULL;  -- no tracked column changed: no entry
    END IF;
    row_pk := NEW."id"::text;
    row_repr := NEW."email"::text;
    row_snapshot := jsonb_build_object(
        'id', NEW."id",
        'email', NEW."email",
        'ssn', CASE WHEN NEW."ssn" IS NULL THEN NULL ELSE '[masked]' END,
        'prefs', NEW."prefs");
  ELSIF TG_OP = 'DELETE' THEN
    diff := jsonb_build_object(
        'id', jsonb_build_array(OLD."id", NULL),
        'email', jsonb_build_array(OLD."email", NULL),
        'ssn', jsonb_build_array(CASE WHEN OLD."ssn" IS NULL THEN NULL ELSE '[masked]' END, NULL),
        'prefs', jsonb_build_array(OLD."prefs", NULL));
    row_pk := OLD."id"::text;
    row_repr := OLD."email"::text;
    row_snapshot := jsonb_build_object(
        'id', OLD."id",
        'email', OLD."email",
        'ssn', CASE WHEN OLD."ssn" IS NULL THEN NULL ELSE '[masked]' END,
        'prefs', OLD."prefs");
  ELSIF TG_OP = 'TRUNCATE' THEN
    diff := NULL;
  END IF;

  INSERT INTO "auditlog".log_entry
    (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,
     actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)
  VALUES (TG_TABLE_SCHEMA,
          TG_TABLE_NAME,
          row_pk,
          row_repr,
          lower(TG_OP),
          diff,
          row_snapshot,
          NULLIF(current_setting('auditlog.actor', true), ''),
          NULLIF(current_setting('auditlog.cid', true), ''),
          ctx_remote_addr,
          "auditlog".invoking_user(),
          NULLIF(current_setting('application_name'), ''),
          ctx_data,
          NULLIF(current_setting('auditlog.tenant', true), ''));
  IF "auditlog".notify_turn('auditlog') THEN
    PERFORM "auditlog".notify_entries(lastval(), 1, TG_TABLE_SCHEMA, TG_TABLE_NAME, lower(TG_OP));
  END IF;
  RETURN NULL;
END
$capture$;

CREATE TRIGGER "auditlog_row_18f965ef"
  AFTER INSERT OR UPDATE OR DELETE ON "public"."users"
  FOR EACH ROW EXECUTE FUNCTION "auditlog"."capture_public_users_14447575"();

CREATE TRIGGER "auditlog_truncate_18f965ef"
  AFTER TRUNCATE ON "public"."users"
  FOR EACH STATEMENT EXECUTE FUNCTION "auditlog"."capture_public_users_14447575"();

COMMENT ON FUNCTION "auditlog"."capture_public_users_14447575"() IS 'pg-auditlog 5648bac36e2b';
COMMENT ON TRIGGER "auditlog_row_18f965ef" ON "public"."users" IS 'pg-auditlog 5648bac36e2b';
COMMENT ON TRIGGER "auditlog_truncate_18f965ef" ON "public"."users" IS 'pg-auditlog 5648bac36e2b';
