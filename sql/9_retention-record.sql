-- pg-auditlog migration: what retention removed, so tamper evidence and retention coexist.
-- Runs with search_path = <audit schema>, pg_catalog, pg_temp (see migration 1).
--
-- `auditlog maintain` (retention) and `auditlog flush` remove entries: whole partitions of a
-- partitioned log, or rows in batches. Each removal is recorded here (and as a log entry of
-- its own), and verify_seals() no longer reports those entries as deleted: it checks the chain
-- from the oldest kept entry. Everything else it reports as before.

CREATE TABLE dropped_range (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- 'retention' (maintain) or 'flush'
  reason        text        NOT NULL,
  -- The partition dropped; NULL when flush deleted rows inside a table.
  log_table     text,
  -- The time range removed (a partition's bounds; for flush, ts_to is --before-date).
  ts_from       timestamptz,
  ts_to         timestamptz,
  entries       bigint      NOT NULL,
  -- Every entry of the seal batches up to this one is gone: their entry seals were removed too,
  -- and the chain is checked from the next batch on (from the stored digest of this one).
  retired_batch bigint,
  -- Sealed entries removed that belong to later batches (their seals stay in the chain).
  ids           bigint[]    NOT NULL DEFAULT '{}',
  dropped_at    timestamptz NOT NULL DEFAULT now(),
  dropped_by    text        NOT NULL DEFAULT current_user
);

COMMENT ON TABLE dropped_range IS 'pg-auditlog: entries removed by retention (maintain) or flush, for verify and for people.';

-- Retiring a batch's seals, and batch_digest(), read the seals of one batch.
CREATE INDEX entry_seal_batch_idx ON entry_seal (batch);

CREATE OR REPLACE FUNCTION verify_seals()
RETURNS TABLE (entry_id bigint, batch bigint, problem text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  horizon xid8 := (SELECT max(to_txid) FROM seal_batch);
  retired bigint := coalesce((SELECT max(d.retired_batch) FROM dropped_range d), 0);
  prev bytea;
  b seal_batch;
  seq_range record;
BEGIN
  IF horizon IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT e.id, s.batch,
           CASE WHEN s.id IS NULL THEN 'inserted: not part of the sealed chain'
                ELSE 'edited: content differs from its seal' END
    FROM log_entry e LEFT JOIN entry_seal s ON s.id = e.id
    WHERE (e.txid < horizon OR s.id IS NOT NULL)
      AND (s.id IS NULL OR s.digest <> entry_digest(e))
    UNION ALL
    SELECT s.id, s.batch, 'deleted: sealed entry is missing'
    FROM entry_seal s
    WHERE s.batch > retired
      AND NOT EXISTS (SELECT 1 FROM log_entry e WHERE e.id = s.id)
      AND NOT EXISTS (SELECT 1 FROM dropped_range d WHERE s.id = ANY (d.ids));
  FOR b IN SELECT * FROM seal_batch ORDER BY seal_batch.batch LOOP
    IF b.batch <= retired THEN
      -- Removed by retention: its stored digest is where the kept chain starts.
      prev := b.digest;
      CONTINUE;
    END IF;
    SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi INTO seq_range FROM entry_seal s WHERE s.batch = b.batch;
    IF batch_digest(prev, b) <> b.digest OR seq_range.n <> b.entries THEN
      entry_id := NULL;
      batch := b.batch;
      problem := format('batch %s: chain broken (seals altered or removed; %s of %s entry seals present)',
                        b.batch, seq_range.n, b.entries);
      RETURN NEXT;
    END IF;
    prev := b.digest;
  END LOOP;
END
$$;
