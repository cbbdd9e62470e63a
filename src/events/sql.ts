// SQL text of the subscriber: pure functions of the audit schema, no I/O. Values always travel
// as parameters; the schema is the only name spliced in, and it is quoted.
import { quoteIdent } from '../ident';

/**
 * Filter parameters, in this order, starting at `first`: schemas text[] and names text[]
 * (NULL: every table), actions text[] (NULL: every action), actors text[] (NULL: anyone).
 */
function filterSql(first: number): string {
  const [schemas, names, actions, actors] = [first, first + 1, first + 2, first + 3].map((n) => `$${n}`);
  return `(${schemas}::text[] IS NULL OR EXISTS (
        SELECT 1 FROM unnest(${schemas}::text[], ${names}::text[]) AS f(s, n)
        WHERE f.s = e.table_schema AND f.n = e.table_name))
      AND (${actions}::text[] IS NULL OR e.action = ANY(${actions}::text[]))
      AND (${actors}::text[] IS NULL OR e.actor = ANY(${actors}::text[]))`;
}

/** The four filter values, for filterSql. */
export interface FilterParams {
  schemas: string[] | null;
  names: string[] | null;
  actions: string[] | null;
  actors: string[] | null;
}

export function filterValues(f: FilterParams): unknown[] {
  return [f.schemas, f.names, f.actions, f.actors];
}

export function channelSql(schema: string): string {
  return `SELECT ${quoteIdent(schema)}.events_channel($1) AS channel`;
}

/** Is event support (migration 2) installed in this schema? */
export const EVENTS_INSTALLED_SQL =
  `SELECT pg_catalog.to_regclass(pg_catalog.quote_ident($1) || '.subscriber_cursor') IS NOT NULL AS installed`;

/**
 * The position a new cursor starts from. Parameter `now`: true to skip every entry committed so
 * far, false to start from the beginning. Returns horizon, last_id, delivered, version.
 */
export function initialCursorSelect(schema: string, now = '$1'): string {
  const log = `${quoteIdent(schema)}.log_entry`;
  return `SELECT CASE WHEN ${now} THEN pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) ELSE '0'::xid8 END::text AS horizon,
       CASE WHEN ${now} THEN coalesce((SELECT max(id) FROM ${log}), 0) ELSE 0 END AS last_id,
       CASE WHEN ${now} THEN ARRAY(SELECT id FROM ${log}
                              WHERE txid >= pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) ORDER BY id)
            ELSE '{}'::bigint[] END AS delivered,
       0::bigint AS version`;
}

/** $1 name, $2 "now"? Creates the named cursor unless it exists; returns nothing. */
export function createCursorSql(schema: string): string {
  return `INSERT INTO ${quoteIdent(schema)}.subscriber_cursor (name, horizon, last_id, delivered)
SELECT $1, i.horizon::xid8, i.last_id, i.delivered FROM (${initialCursorSelect(schema, '$2')}) AS i
ON CONFLICT (name) DO NOTHING`;
}

export function loadCursorSql(schema: string): string {
  return `SELECT horizon::text AS horizon, last_id, delivered, version, stored_by FROM ${quoteIdent(schema)}.subscriber_cursor WHERE name = $1`;
}

/**
 * The next batch: the first $4 matching, undelivered entries by id, visible now (committed),
 * cut short once their stored size passes $5 bytes (the first entry always comes).
 *
 * Params: $1 horizon, $2 last_id, $3 delivered ids, $4 batch size, $5 byte budget,
 * $6 only entries of finished transactions (txid < snapshot xmin), $7..$10 filter.
 *
 * Undelivered entries are those with id > last_id ("fresh", read along the primary key) and
 * those with id <= last_id whose txid >= horizon and that are not in delivered ("late": written
 * by a transaction that committed after later ids were delivered, found by the txid index).
 */
export function fetchBatchSql(schema: string): string {
  const log = `${quoteIdent(schema)}.log_entry`;
  const finished = `(NOT $6 OR e.txid < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()))`;
  const size = `coalesce(pg_catalog.pg_column_size(e.changes), 0) + coalesce(pg_catalog.pg_column_size(e.snapshot), 0)
             + coalesce(pg_catalog.pg_column_size(e.additional_data), 0) + coalesce(pg_catalog.pg_column_size(e.object_repr), 0)`;
  // Every step reads log_entry through an index, whatever the statistics say (a log just
  // installed has none, and a hash join over the whole log would cost a scan per batch).
  return `WITH late AS MATERIALIZED (
  SELECT e.id, ${size} AS size FROM ${log} e
  WHERE e.txid >= $1::xid8 AND e.id <= $2 AND e.id <> ALL($3::bigint[]) AND ${finished}
    AND ${filterSql(7)}
  ORDER BY e.id LIMIT $4
), fresh AS MATERIALIZED (
  SELECT e.id, ${size} AS size FROM ${log} e
  WHERE e.id > $2 AND ${finished}
    AND ${filterSql(7)}
  ORDER BY e.id LIMIT $4
), batch AS (
  SELECT id, size FROM late UNION ALL SELECT id, size FROM fresh ORDER BY id LIMIT $4
), sized AS (
  SELECT id, sum(size) OVER (ORDER BY id) - size AS before FROM batch
)
SELECT e.* FROM ${log} e
WHERE e.id = ANY(ARRAY(SELECT id FROM sized WHERE before < $5))
ORDER BY e.id`;
}

/**
 * The cursor after a batch, computed with a fresh snapshot. $1 name, $2 horizon, $3 delivered
 * ids (old ones plus the batch), $4 last_id, $5 whether last_id may jump to the newest visible
 * id, $6..$9 filter, $10 the version last stored (no row comes back when the cursor was stored
 * since, or deleted), $11 this instance's token.
 *
 * New horizon = the lowest of: this snapshot's xmin (every transaction below it has finished,
 * so every entry it wrote is visible now) and the lowest txid of a matching entry not yet
 * delivered. Below it, everything is delivered; delivered keeps only the ids at or above it.
 */
export function advanceCursorSql(schema: string, durable: boolean): string {
  const log = `${quoteIdent(schema)}.log_entry`;
  const next = `SELECT greatest($2::xid8, least(
      pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()),
      (SELECT min(e.txid) FROM ${log} e
       WHERE e.txid >= $2::xid8 AND e.id <> ALL($3::bigint[]) AND ${filterSql(6)}))) AS horizon,
    CASE WHEN $5 THEN greatest($4, (SELECT max(id) FROM ${log})) ELSE $4 END AS last_id`;
  const kept = `ARRAY(SELECT e.id FROM ${log} e WHERE e.id = ANY($3::bigint[]) AND e.txid >= n.horizon ORDER BY e.id)`;
  if (!durable) {
    return `SELECT $1::text AS name, n.horizon::text AS horizon, n.last_id, ${kept} AS delivered, $10::bigint + 1 AS version,
       $11::text AS stored_by
FROM (${next}) AS n`;
  }
  return `UPDATE ${quoteIdent(schema)}.subscriber_cursor c
SET horizon = n.horizon, last_id = n.last_id, delivered = ${kept}, version = c.version + 1, stored_by = $11,
    updated_at = now()
FROM (${next}) AS n
WHERE c.name = $1 AND c.version = $10
RETURNING c.horizon::text AS horizon, c.last_id, c.delivered, c.version, c.stored_by`;
}
