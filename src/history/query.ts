// Reading the log: one query builder for every filter, cursor pagination by entry id.
// Each filter maps onto an index (see sql/3_history.sql): object → (table_name, object_pk, id),
// actor → (actor, id), cid → (cid), txid → (txid), the rest → the primary key. A time
// window (since and until) is first turned into an id range through BRIN(ts), so a window
// far in the past is not found by walking the primary key from the newest entry down.
import type { CustomTypesConfig, QueryConfig } from 'pg';
import type { HistoryOptions, HistoryPage, HistoryQuery, LogEntry, ObjectKey } from '../interfaces';
import sql, { join, raw, type Sql } from 'sql-template-tag';
import { exactJsonTypes, prepared, unnamed } from '../db';
import { invalid, LOG_ENTRY_COLUMNS, objectPkIn, parseInstant, parseTable, schemaOf, type Db } from './common';
import { withCanonicalKeys } from './keys';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** Entries matching `query`, one page, newest first unless `order: 'oldest'`. */
export async function history(db: Db, given: HistoryQuery): Promise<HistoryPage> {
  const cursor = parseCursor(given.cursor);
  buildHistoryQuery(given, cursor); // validates every argument before the first query
  const query = await withCanonicalKeys(db, given);
  if (!usesWindow(query) || cursor?.bound !== undefined) return page(db, query, cursor);
  const window = buildWindowQuery(query);
  const { rows: [w] } = await db.query<{ lo: string | null; hi: string | null }>(readQuery(query, window.text, window.values));
  if (!w?.lo || !w.hi) return { entries: [], nextCursor: null };
  // Newest first starts at the window's last id (or the caller's cursor) and stops at its
  // first; oldest first the reverse.
  return (query.order ?? 'newest') === 'newest'
    ? page(db, query, { after: cursor?.after ?? (BigInt(w.hi) + 1n).toString(), bound: w.lo })
    : page(db, query, { after: cursor?.after ?? (BigInt(w.lo) - 1n).toString(), bound: w.hi });
}

async function page(db: Db, query: HistoryQuery, cursor: Cursor | null): Promise<HistoryPage> {
  const { text, values, limit } = buildHistoryQuery(query, cursor);
  const { rows } = await db.query<LogEntry>(readQuery(query, text, values, exactJsonTypes));
  const more = rows.length > limit;
  const entries = more ? rows.slice(0, limit) : rows;
  const last = entries[entries.length - 1];
  return { entries, nextCursor: more && last ? (cursor?.bound ? `${last.id}:${cursor.bound}` : last.id) : null };
}

export interface Cursor {
  /** Continue after this id (exclusive), in the query's order. */
  after: string;
  /** For a time window: the id where the window ends, in the query's order (inclusive). */
  bound?: string;
}

/** Cursor text: "<id>", or "<id>:<bound>" when paging through a time window. */
export function parseCursor(cursor: string | null | undefined): Cursor | null {
  if (cursor === undefined || cursor === null) return null;
  const m = typeof cursor === 'string' ? /^(\d{1,19})(?::(\d{1,19}))?$/.exec(cursor) : null;
  if (!m) throw invalid('cursor must be the nextCursor of a previous page');
  return m[2] === undefined ? { after: m[1]! } : { after: m[1]!, bound: m[2] };
}

/**
 * A read of the log as a prepared statement, except where only a plan made for the values is
 * good, and those are planned on every call:
 * - a table as the only selective filter: whether its `(table_name, id)` index or the primary
 *   key is the fast way depends on how much of the log that table is (a generic plan walks the
 *   whole log backwards for a rare table);
 * - a time bound: a plan for the values prunes a partitioned log to the partitions the window
 *   covers before planning them, so it is cheap to make, while a generic plan is costed for
 *   every partition and came out parallel (on 50,000,000 entries, a one-minute window took
 *   363 ms starting workers instead of 5 ms).
 */
export function readQuery(query: HistoryQuery, text: string, values: unknown[], parsers?: CustomTypesConfig): QueryConfig {
  const tableOnly = query.table !== undefined && query.objectPk === undefined && query.objectPks === undefined
    && query.actor === undefined && query.cid === undefined && query.txid === undefined;
  const timeBound = query.since !== undefined || query.until !== undefined;
  return tableOnly || timeBound ? unnamed(text, values, parsers) : prepared(text, values, parsers);
}

/** A closed time window and no filter with an index of its own: bound the ids first. */
export function usesWindow(query: HistoryQuery): boolean {
  return query.since !== undefined && query.until !== undefined && query.objectPk === undefined
    && query.objectPks === undefined && query.actor === undefined && query.cid === undefined && query.txid === undefined;
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
  const { rows } = await db.query<LogEntry>(
    prepared(`SELECT ${LOG_ENTRY_COLUMNS} FROM ${schemaOf(options)}.log_entry WHERE id = $1::bigint`, [text], exactJsonTypes));
  return rows[0] ?? null;
}

const QUERY_KEYS = new Set([
  'schema', 'table', 'objectPk', 'objectPks', 'actor', 'cid', 'txid', 'actions', 'since', 'until', 'order', 'limit', 'cursor',
]);

export interface Filters {
  schema: string;
  /** One fragment per condition, each carrying its own parameters. */
  where: Sql[];
}

/** The WHERE conditions of a query (without cursor), one sql-template-tag fragment each. */
export function filters(query: HistoryQuery): Filters {
  for (const key of Object.keys(query)) {
    if (!QUERY_KEYS.has(key)) throw invalid(`unknown history filter "${key}"; expected one of ${[...QUERY_KEYS].join(', ')}`);
  }
  const schema = schemaOf(query);
  const where: Sql[] = [];

  if (query.objectPk !== undefined && query.objectPks !== undefined) throw invalid('give objectPk or objectPks, not both');
  const keys = query.objectPk !== undefined ? [query.objectPk] : query.objectPks;
  if (keys !== undefined && query.table === undefined) throw invalid('objectPk / objectPks need the table they belong to');
  if (query.table !== undefined) {
    const t = parseTable(query.table);
    // With an actor, cid or transaction, their index is the selective one: PostgreSQL would
    // otherwise AND it with a bitmap of every entry of the table (millions: 300 ms on 10M
    // entries). `|| ''` keeps the table test a filter on the few rows that index finds.
    const selective = keys === undefined && (query.actor !== undefined || query.cid !== undefined || query.txid !== undefined);
    where.push(selective ? sql`table_name || '' = ${t.name}` : sql`table_name = ${t.name}`, sql`table_schema = ${t.schema}`);
  }
  if (keys !== undefined) {
    if (!Array.isArray(keys) || keys.length === 0) throw invalid('objectPks must be a non-empty array of keys');
    where.push(objectPkIn(schema, keys));
  }
  const text = (name: string, v: unknown) => {
    if (typeof v !== 'string' || v === '') throw invalid(`${name} must be a non-empty string`);
    return v;
  };
  // The indexes hold 200-character prefixes (see sql/3_history.sql): match the prefix, then the value.
  if (query.actor !== undefined) {
    const actor = text('actor', query.actor);
    where.push(sql`left(actor, 200) = left(${actor}, 200)`, sql`actor = ${actor}`);
  }
  if (query.cid !== undefined) {
    const cid = text('cid', query.cid);
    where.push(sql`left(cid, 200) = left(${cid}, 200)`, sql`cid = ${cid}`);
  }
  if (query.txid !== undefined) {
    const txid = String(query.txid);
    if (!/^\d{1,19}$/.test(txid)) throw invalid(`txid ${JSON.stringify(txid)} must be a transaction id (a positive integer)`);
    where.push(sql`txid = ${txid}::xid8`); // the btree on txid (migration 2)
  }
  if (query.actions !== undefined) {
    if (!Array.isArray(query.actions) || query.actions.length === 0 || query.actions.some((a) => typeof a !== 'string')) {
      throw invalid('actions must be a non-empty array of action names, e.g. ["update", "delete"]');
    }
    where.push(sql`action = ANY(${query.actions}::text[])`);
  }
  if (query.since !== undefined) where.push(sql`ts >= ${parseInstant(query.since, 'since')}::timestamptz`);
  if (query.until !== undefined) where.push(sql`ts < ${parseInstant(query.until, 'until')}::timestamptz`);
  return { schema, where };
}

/** WHERE text of the fragments (true when there are none). */
function whereOf(where: Sql[], separator: string): Sql {
  return where.length > 0 ? join(where, separator) : sql`true`;
}

/**
 * The first and last id of the entries in a time window. "id + 0" keeps PostgreSQL from
 * answering min/max by walking the primary key from either end: it reads the window through
 * BRIN(ts) instead, at a cost that depends on the window, not on the size of the log.
 */
export function buildWindowQuery(query: HistoryQuery): { text: string; values: unknown[] } {
  const f = filters(query);
  const q = sql`SELECT min(id + 0)::text AS lo, max(id + 0)::text AS hi FROM ${raw(f.schema)}.log_entry WHERE ${whereOf(f.where, ' AND ')}`;
  return { text: q.text, values: q.values };
}

/** The SQL of one page of a history query. */
export function buildHistoryQuery(query: HistoryQuery, cursor: Cursor | null = parseCursor(query.cursor)): { text: string; values: unknown[]; limit: number } {
  const { schema, where } = filters(query);
  const order = query.order ?? 'newest';
  if (order !== 'newest' && order !== 'oldest') throw invalid(`order must be "newest" or "oldest", not ${JSON.stringify(order)}`);
  if (cursor) {
    where.push(order === 'newest' ? sql`id < ${cursor.after}::bigint` : sql`id > ${cursor.after}::bigint`);
    if (cursor.bound !== undefined) where.push(order === 'newest' ? sql`id >= ${cursor.bound}::bigint` : sql`id <= ${cursor.bound}::bigint`);
  }
  const limit = query.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw invalid(`limit must be an integer from 1 to ${MAX_LIMIT}`);

  const q = sql`SELECT ${raw(LOG_ENTRY_COLUMNS)} FROM ${raw(schema)}.log_entry
WHERE ${whereOf(where, '\n  AND ')}
ORDER BY id ${order === 'newest' ? raw('DESC') : raw('ASC')}
LIMIT ${limit + 1}`;
  return { text: q.text, values: q.values, limit };
}
