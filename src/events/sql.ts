// SQL of the subscriber: pure functions of the audit schema and the values, no I/O, composed
// with sql-template-tag so each filter is one fragment carrying its own parameters. The schema
// is the only name spliced in, and it is quoted.
import sql, { raw, type Sql } from 'sql-template-tag';
import { quoteIdent } from '../ident';

/** The four filters; null matches everything. */
export interface FilterParams {
  schemas: string[] | null;
  names: string[] | null;
  actions: string[] | null;
  actors: string[] | null;
}

/** Entries `e` matching the filter: tables (schemas[i], names[i]), actions, actors. */
function filterSql(f: FilterParams): Sql {
  return sql`(${f.schemas}::text[] IS NULL OR EXISTS (
        SELECT 1 FROM unnest(${f.schemas}::text[], ${f.names}::text[]) AS f(s, n)
        WHERE f.s = e.table_schema AND f.n = e.table_name))
      AND (${f.actions}::text[] IS NULL OR e.action = ANY(${f.actions}::text[]))
      AND (${f.actors}::text[] IS NULL OR e.actor = ANY(${f.actors}::text[]))`;
}

const logOf = (schema: string) => raw(`${quoteIdent(schema)}.log_entry`);
const cursorTableOf = (schema: string) => raw(`${quoteIdent(schema)}.subscriber_cursor`);

export function channelSql(schema: string): Sql {
  return sql`SELECT ${raw(quoteIdent(schema))}.events_channel(${schema}) AS channel`;
}

/** Is event support (migration 2) installed in this schema? */
export function eventsInstalledSql(schema: string): Sql {
  return sql`SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(${schema}) || '.subscriber_cursor') IS NOT NULL AS installed`;
}

/**
 * The position a new cursor starts from: `now` skips every entry committed so far, otherwise
 * it starts from the beginning. Returns horizon, last_id, delivered, version.
 */
export function initialCursorSelect(schema: string, now: boolean): Sql {
  const log = logOf(schema);
  if (!now) return sql`SELECT '0'::xid8::text AS horizon, 0::bigint AS last_id, '{}'::bigint[] AS delivered, 0::bigint AS version`;
  return sql`SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text AS horizon,
       coalesce((SELECT max(id) FROM ${log}), 0) AS last_id,
       ARRAY(SELECT id FROM ${log} WHERE txid >= pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) ORDER BY id) AS delivered,
       0::bigint AS version`;
}

/** Creates the named cursor unless it exists; returns nothing. */
export function createCursorSql(schema: string, name: string, now: boolean): Sql {
  return sql`INSERT INTO ${cursorTableOf(schema)} (name, horizon, last_id, delivered)
SELECT ${name}, i.horizon::xid8, i.last_id, i.delivered FROM (${initialCursorSelect(schema, now)}) AS i
ON CONFLICT (name) DO NOTHING`;
}

export function loadCursorSql(schema: string, name: string): Sql {
  return sql`SELECT horizon::text AS horizon, last_id, delivered, version, stored_by FROM ${cursorTableOf(schema)} WHERE name = ${name}`;
}

export interface BatchParams {
  horizon: string;
  lastId: string;
  delivered: string[];
  batchSize: number;
  /** Byte budget: the batch is cut once the entries' stored size passes it (the first always comes). */
  maxBytes: number;
  /** Only entries of finished transactions (txid < snapshot xmin). */
  onlyFinished: boolean;
  filter: FilterParams;
}

/**
 * The next batch: the first batchSize matching, undelivered entries by id, visible now
 * (committed), cut short once their stored size passes maxBytes.
 *
 * Undelivered entries are those with id > lastId ("fresh", read along the primary key) and
 * those with id <= lastId whose txid >= horizon and that are not in delivered ("late": written
 * by a transaction that committed after later ids were delivered, found by the txid index).
 */
export function fetchBatchSql(schema: string, p: BatchParams): Sql {
  const log = logOf(schema);
  const finished = sql`(NOT ${p.onlyFinished}::boolean OR e.txid < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()))`;
  const size = raw(`coalesce(pg_catalog.pg_column_size(e.changes), 0) + coalesce(pg_catalog.pg_column_size(e.snapshot), 0)
             + coalesce(pg_catalog.pg_column_size(e.additional_data), 0) + coalesce(pg_catalog.pg_column_size(e.object_repr), 0)`);
  // Every step reads log_entry through an index, whatever the statistics say (a log just
  // installed has none, and a hash join over the whole log would cost a scan per batch).
  return sql`WITH late AS MATERIALIZED (
  SELECT e.id, ${size} AS size FROM ${log} e
  WHERE e.txid >= ${p.horizon}::xid8 AND e.id <= ${p.lastId}::bigint AND e.id <> ALL(${p.delivered}::bigint[]) AND ${finished}
    AND ${filterSql(p.filter)}
  ORDER BY e.id LIMIT ${p.batchSize}
), fresh AS MATERIALIZED (
  SELECT e.id, ${size} AS size FROM ${log} e
  WHERE e.id > ${p.lastId}::bigint AND ${finished}
    AND ${filterSql(p.filter)}
  ORDER BY e.id LIMIT ${p.batchSize}
), batch AS (
  SELECT id, size FROM late UNION ALL SELECT id, size FROM fresh ORDER BY id LIMIT ${p.batchSize}
), sized AS (
  SELECT id, sum(size) OVER (ORDER BY id) - size AS before FROM batch
)
SELECT e.* FROM ${log} e
WHERE e.id = ANY(ARRAY(SELECT id FROM sized WHERE before < ${p.maxBytes}))
ORDER BY e.id`;
}

export interface AdvanceParams {
  /** Undefined: an in-memory cursor, computed but not stored. */
  name: string | undefined;
  horizon: string;
  /** Old delivered ids plus the batch's. */
  delivered: string[];
  lastId: string;
  /** Whether last_id may jump to the newest visible id (the batch was empty). */
  jump: boolean;
  filter: FilterParams;
  /** The version last stored: no row comes back when the cursor was stored since, or deleted. */
  version: string;
  /** This instance's token. */
  token: string;
}

/**
 * The cursor after a batch, computed with a fresh snapshot.
 *
 * New horizon = the lowest of: this snapshot's xmin (every transaction below it has finished,
 * so every entry it wrote is visible now) and the lowest txid of a matching entry not yet
 * delivered. Below it, everything is delivered; delivered keeps only the ids at or above it.
 */
export function advanceCursorSql(schema: string, p: AdvanceParams): Sql {
  const log = logOf(schema);
  const next = sql`SELECT greatest(${p.horizon}::xid8, least(
      pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()),
      (SELECT min(e.txid) FROM ${log} e
       WHERE e.txid >= ${p.horizon}::xid8 AND e.id <> ALL(${p.delivered}::bigint[]) AND ${filterSql(p.filter)}))) AS horizon,
    CASE WHEN ${p.jump}::boolean THEN greatest(${p.lastId}::bigint, (SELECT max(id) FROM ${log})) ELSE ${p.lastId}::bigint END AS last_id`;
  const kept = sql`ARRAY(SELECT e.id FROM ${log} e WHERE e.id = ANY(${p.delivered}::bigint[]) AND e.txid >= n.horizon ORDER BY e.id)`;
  if (p.name === undefined) {
    return sql`SELECT NULL::text AS name, n.horizon::text AS horizon, n.last_id, ${kept} AS delivered, ${p.version}::bigint + 1 AS version,
       ${p.token}::text AS stored_by
FROM (${next}) AS n`;
  }
  return sql`UPDATE ${cursorTableOf(schema)} c
SET horizon = n.horizon, last_id = n.last_id, delivered = ${kept}, version = c.version + 1, stored_by = ${p.token},
    updated_at = now()
FROM (${next}) AS n
WHERE c.name = ${p.name} AND c.version = ${p.version}::bigint
RETURNING c.horizon::text AS horizon, c.last_id, c.delivered, c.version, c.stored_by`;
}
