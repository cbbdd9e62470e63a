-- pg-auditlog migration 3: reading the log (history, time travel, reports) and manual events.
-- Runs with search_path = <audit schema>, pg_catalog, pg_temp, like migration 1.
--
-- Index budget: every index is paid on every audited write, so only three are added, each
-- as small as its query allows. Object, many-object and table history use the existing
-- (table_name, object_pk, id) index or the primary key; time ranges use BRIN(ts).

-- History of one actor, newest first, paged by id: (actor, id) gives the order directly.
-- Partial: writes without an actor (migrations, psql, jobs) pay nothing.
-- Index entries are limited to about 2.7 kB, and an actor or cid is whatever the application
-- sets: indexing a prefix means no value can make a write fail. Queries match prefix and value.
CREATE INDEX log_entry_actor_idx ON log_entry (left(actor, 200), id) WHERE actor IS NOT NULL;

-- History of one correlation id. A cid spans one request or job, so its entries are few and
-- sorting them is cheap; a plain (cid) key lets B-tree deduplication store many entries of
-- one cid (bulk writes) in a few bytes each. Partial, like the actor index.
CREATE INDEX log_entry_cid_idx ON log_entry (left(cid, 200)) WHERE cid IS NOT NULL;

-- One transaction's entries: the btree on txid from migration 2 (events) serves it.

-- A BRIN index only helps for page ranges it has summarised; by default that waits for the
-- next VACUUM, so the newest entries, which readers ask about most, were scanned in full.
-- autosummarize asks autovacuum to summarise each range as soon as it is full.
ALTER INDEX log_entry_ts_idx SET (autosummarize = on);

-- The object_pk text of a key given as JSON: a scalar is its text (42 -> '42', "a" -> 'a'),
-- an array (composite key) its jsonb text ('[7, 2]'), exactly as the capture triggers write it.
CREATE FUNCTION pk_text(key jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $$
  SELECT CASE jsonb_typeof(key) WHEN 'array' THEN key::text ELSE key #>> '{}' END
$$;

-- Records an event no trigger sees (access, export, login, …) with the session context of
-- the calling transaction, read here from the same settings the triggers read. SECURITY
-- DEFINER so the application role needs EXECUTE on this function, not INSERT on log_entry;
-- it refuses the trigger verbs, so nobody can forge a change that time travel would replay.
CREATE FUNCTION log_event(
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
  RETURN new_id;
END
$$;
