-- pg-auditlog audit schema, migration 2: post-log events.
-- Runs with search_path = <audit schema>, pg_catalog, pg_temp (see migration 1).
--
-- Every committed log entry sends a small NOTIFY; subscribers treat it only as a wake-up and
-- read the entries themselves from log_entry, driven by a durable cursor, so nothing depends on
-- a notification arriving (a listener that was down catches up from the table).

-- The NOTIFY channel of an audit schema. Channel names are capped at 63 bytes like identifiers:
-- an over-long one would make every audited write fail, so long schema names are hashed.
CREATE FUNCTION events_channel(audit_schema text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $$
  SELECT CASE WHEN octet_length(audit_schema) <= 56 THEN audit_schema || '.events'
              ELSE 'auditlog.events.' || md5(audit_schema) END
$$;

-- Notifications are only wake-ups, and NOTIFY has a price: PostgreSQL serialises the commits of
-- notifying transactions (a global lock held through the commit's WAL flush), which undoes group
-- commit; measured here, eight clients doing single-row updates lost more than half their
-- throughput. So per 10 ms window only one transaction notifies: the first to take the
-- window's advisory lock (released at its commit); concurrent ones skip, and subscribers look
-- again for a while after each notification, so their entries are found as quickly. A
-- transaction notifies at most once: all its entries become visible at the same commit.
--
-- Payload: the statement's highest entry id, how many entries, table and action, as JSON (a
-- hint, not a list: other transactions' entries may come with it). Each text part is cut to
-- 200 characters, so the payload stays far below PostgreSQL's 8000-byte limit whatever an
-- entry holds. NOTIFY is sent at commit, and never for a transaction that rolls back.
CREATE FUNCTION notify_entries() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF current_setting('auditlog.notify_sent', true) = 'on'
     OR NOT pg_try_advisory_xact_lock(hashtext('pg-auditlog notify ' || TG_TABLE_SCHEMA),
                                      (floor(extract(epoch FROM clock_timestamp()) * 100)::bigint % 2147483647)::int) THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('auditlog.notify_sent', 'on', true);
  PERFORM pg_notify(events_channel(TG_TABLE_SCHEMA), json_build_object(
    'id', max(e.id),
    'count', count(*),
    'schema', left(e.table_schema, 200),
    'table', left(e.table_name, 200),
    'action', left(e.action, 200))::text)
  FROM new_entries e
  GROUP BY e.table_schema, e.table_name, e.action;
  RETURN NULL;
END
$$;

-- On log_entry itself rather than in each generated capture function: manual entries (custom
-- verbs) notify too, and the capture generator stays independent of events.
CREATE TRIGGER notify_entries AFTER INSERT ON log_entry
  REFERENCING NEW TABLE AS new_entries
  FOR EACH STATEMENT EXECUTE FUNCTION notify_entries();

-- Entries by writing transaction: subscribers (see subscriber_cursor), history by transaction,
-- and sealing (tamper evidence) in (txid, id) order.
CREATE INDEX log_entry_txid_idx ON log_entry (txid, id);

-- One row per named subscriber. Sequence ids do not commit in id order, so a position is not
-- one id but a transaction horizon plus the entries already delivered above it:
--   every matching entry whose txid < horizon has been delivered, and
--   delivered lists the ids delivered so far whose txid >= horizon.
-- A subscriber only moves horizon up to its snapshot's xmin (every transaction below it has
-- finished), so an entry committed late by an old transaction is still found. See
-- src/events/sql.ts and docs/events.md ("Why commit order needs more than the last id").
CREATE TABLE subscriber_cursor (
  name       text        NOT NULL,
  horizon    xid8        NOT NULL,
  last_id    bigint      NOT NULL,
  delivered  bigint[]    NOT NULL DEFAULT '{}',
  -- Incremented by every store; a subscriber that finds another value than it stored last
  -- knows a second process is using the same name.
  version    bigint      NOT NULL DEFAULT 0,
  -- Random token of the subscriber instance that stored it last (tells a lost reply to our own
  -- store apart from another process).
  stored_by  text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT subscriber_cursor_pkey PRIMARY KEY (name)
);

COMMENT ON TABLE subscriber_cursor IS 'pg-auditlog: durable positions of named event subscribers. Delete a row to make that subscriber start over.';
