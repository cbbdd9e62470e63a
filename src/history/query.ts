// Reading the log: one query builder for every filter, cursor pagination by entry id.
// Each filter maps onto an index (see sql/3_history.sql): object → (table_name, object_pk, id),
// actor → (actor, id), cid → (cid), txid → BRIN(txid), time range → BRIN(ts), the rest → PK.
import type { HistoryOptions, HistoryPage, HistoryQuery, LogEntry, ObjectKey } from '../interfaces';
import { invalid, keysJson, objectPkIn, parseInstant, parseTable, schemaOf, type Db } from './common';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** Entries matching `query`, one page, newest first unless `order: 'oldest'`. */
export async function history(db: Db, query: HistoryQuery): Promise<HistoryPage> {
  const { text, values, limit } = buildHistoryQuery(query);
  const { rows } = await db.query<LogEntry>(text, values);
  const more = rows.length > limit;
  const entries = more ? rows.slice(0, limit) : rows;
  return { entries, nextCursor: more ? entries[entries.length - 1]!.id : null };
}

/** Every entry matching `query` (all pages), for small result sets such as one object. */
export async function allHistory(db: Db, query: Omit<HistoryQuery, 'cursor'>, max = Infinity): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  let cursor: string | null = null;
  do {
    const page: HistoryPage = await history(db, { ...query, cursor, limit: Math.min(MAX_LIMIT, max - out.length) });
    out.push(...page.entries);
    cursor = page.nextCursor;
  } while (cursor !== null && out.length < max);
  return out;
}

/** History of one object, like django-auditlog's get_for_object(). */
export function getForObject(
  db: Db, table: string, objectPk: ObjectKey, query: Omit<HistoryQuery, 'table' | 'objectPk' | 'objectPks'> = {},
): Promise<HistoryPage> {
  return history(db, { ...query, table, objectPk });
}

/** History of several objects of one table, like get_for_objects(). */
export function getForObjects(
  db: Db, table: string, objectPks: ObjectKey[], query: Omit<HistoryQuery, 'table' | 'objectPk' | 'objectPks'> = {},
): Promise<HistoryPage> {
  return history(db, { ...query, table, objectPks });
}

/** One entry by id, or null. */
export async function getEntry(db: Db, id: string | number | bigint, options: HistoryOptions = {}): Promise<LogEntry | null> {
  const text = String(id);
  if (!/^\d{1,19}$/.test(text)) throw invalid(`entry id ${JSON.stringify(text)} must be a positive integer`);
  const { rows } = await db.query<LogEntry>(`SELECT * FROM ${schemaOf(options)}.log_entry WHERE id = $1::bigint`, [text]);
  return rows[0] ?? null;
}

const QUERY_KEYS = new Set([
  'schema', 'table', 'objectPk', 'objectPks', 'actor', 'cid', 'txid', 'actions', 'since', 'until', 'order', 'limit', 'cursor',
]);

/** The SQL of a history query; exported for the EXPLAIN test. */
export function buildHistoryQuery(query: HistoryQuery): { text: string; values: unknown[]; limit: number } {
  for (const key of Object.keys(query)) {
    if (!QUERY_KEYS.has(key)) throw invalid(`unknown history filter "${key}"; expected one of ${[...QUERY_KEYS].join(', ')}`);
  }
  const schema = schemaOf(query);
  const values: unknown[] = [];
  const param = (v: unknown) => { values.push(v); return `$${values.length}`; };
  const where: string[] = [];

  if (query.objectPk !== undefined && query.objectPks !== undefined) throw invalid('give objectPk or objectPks, not both');
  const keys = query.objectPk !== undefined ? [query.objectPk] : query.objectPks;
  if (keys !== undefined && query.table === undefined) throw invalid('objectPk / objectPks need the table they belong to');
  if (query.table !== undefined) {
    const t = parseTable(query.table);
    where.push(`table_name = ${param(t.name)}`, `table_schema = ${param(t.schema)}`);
  }
  if (keys !== undefined) {
    if (!Array.isArray(keys) || keys.length === 0) throw invalid('objectPks must be a non-empty array of keys');
    where.push(objectPkIn(schema, param(keysJson(keys))));
  }
  const text = (name: string, v: unknown) => {
    if (typeof v !== 'string' || v === '') throw invalid(`${name} must be a non-empty string`);
    return v;
  };
  if (query.actor !== undefined) where.push(`actor = ${param(text('actor', query.actor))}`);
  if (query.cid !== undefined) where.push(`cid = ${param(text('cid', query.cid))}`);
  if (query.txid !== undefined) {
    const txid = String(query.txid);
    if (!/^\d{1,19}$/.test(txid)) throw invalid(`txid ${JSON.stringify(txid)} must be a transaction id (a positive integer)`);
    // The same expression as the BRIN index on txid, so the planner can use it.
    where.push(`(txid::text)::bigint = ${param(txid)}::bigint`);
  }
  if (query.actions !== undefined) {
    if (!Array.isArray(query.actions) || query.actions.length === 0 || query.actions.some((a) => typeof a !== 'string')) {
      throw invalid('actions must be a non-empty array of action names, e.g. ["update", "delete"]');
    }
    where.push(`action = ANY(${param(query.actions)}::text[])`);
  }
  if (query.since !== undefined) where.push(`ts >= ${param(parseInstant(query.since, 'since'))}::timestamptz`);
  if (query.until !== undefined) where.push(`ts < ${param(parseInstant(query.until, 'until'))}::timestamptz`);

  const order = query.order ?? 'newest';
  if (order !== 'newest' && order !== 'oldest') throw invalid(`order must be "newest" or "oldest", not ${JSON.stringify(order)}`);
  if (query.cursor !== undefined && query.cursor !== null) {
    if (typeof query.cursor !== 'string' || !/^\d{1,19}$/.test(query.cursor)) throw invalid('cursor must be the nextCursor of a previous page');
    where.push(`id ${order === 'newest' ? '<' : '>'} ${param(query.cursor)}::bigint`);
  }
  const limit = query.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw invalid(`limit must be an integer from 1 to ${MAX_LIMIT}`);

  return {
    text: `SELECT * FROM ${schema}.log_entry
WHERE ${where.length > 0 ? where.join('\n  AND ') : 'true'}
ORDER BY id ${order === 'newest' ? 'DESC' : 'ASC'}
LIMIT ${param(limit + 1)}`,
    values,
    limit,
  };
}
