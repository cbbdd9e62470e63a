// Free text over the object's representation and primary key, with every other history
// filter. A substring match has no index to use, so each page reads at most `scanLimit`
// entries along the index the other filters pick (newest first) and matches those: a page
// costs the same on a log of ten million entries as on a small one. When the scan ends before
// the page is full, the page says so (`partial`) and its cursor continues further back.
import type { HistorySearchPage, HistorySearchQuery, LogEntry } from '../interfaces';
import sql, { join, raw } from 'sql-template-tag';
import { exactJsonTypes, prepared } from '../db';
import { invalid, LOG_ENTRY_COLUMNS } from './common';
import { buildWindowQuery, DEFAULT_LIMIT, filters, MAX_LIMIT, parseCursor, readQuery, usesWindow, type Cursor } from './query';
import type { Db } from './common';

export const DEFAULT_SCAN_LIMIT = 25_000;

export async function searchHistory(db: Db, search: HistorySearchQuery): Promise<HistorySearchPage> {
  const { text, scanLimit = DEFAULT_SCAN_LIMIT, ...query } = search;
  if (typeof text !== 'string' || text.trim() === '' || text.length > 200) throw invalid('search text must be 1 to 200 characters');
  if (!Number.isInteger(scanLimit) || scanLimit < 1 || scanLimit > 1_000_000) throw invalid('scanLimit must be an integer from 1 to 1000000');
  if ((query.order ?? 'newest') !== 'newest') throw invalid('a text search lists newest first only');
  const limit = query.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw invalid(`limit must be an integer from 1 to ${MAX_LIMIT}`);

  let cursor: Cursor | null = parseCursor(query.cursor);
  const { cursor: _ignored, limit: _limit, ...where } = query;
  if (usesWindow(query) && cursor?.bound === undefined) {
    // A closed time window: bound the ids through BRIN(ts) first, as history() does.
    const w = buildWindowQuery(where);
    const { rows: [range] } = await db.query<{ lo: string | null; hi: string | null }>(readQuery(where, w.text, w.values));
    if (!range?.lo || !range.hi) return { entries: [], nextCursor: null, scanned: 0, partial: false };
    cursor = { after: cursor?.after ?? (BigInt(range.hi) + 1n).toString(), bound: range.lo };
  }
  const f = filters(where);
  if (cursor) {
    f.where.push(sql`id < ${cursor.after}::bigint`);
    if (cursor.bound !== undefined) f.where.push(sql`id >= ${cursor.bound}::bigint`);
  }
  const needle = text.trim().toLowerCase();
  const q = sql`WITH scanned AS MATERIALIZED (
  SELECT id, object_repr, object_pk FROM ${raw(f.schema)}.log_entry
  WHERE ${f.where.length > 0 ? join(f.where, '\n    AND ') : sql`true`}
  ORDER BY id DESC
  LIMIT ${scanLimit}
)
SELECT (SELECT min(id) FROM scanned)::text AS lo, (SELECT count(*) FROM scanned)::int AS n,
  ARRAY(SELECT id FROM scanned
        WHERE strpos(lower(object_repr), ${needle}) > 0 OR strpos(lower(object_pk), ${needle}) > 0
        ORDER BY id DESC LIMIT ${limit + 1})::text[] AS ids`;
  const { rows: [found] } = await db.query<{ lo: string | null; n: number; ids: string[] }>(readQuery(where, q.text, q.values));
  const ids = found?.ids ?? [];
  const scanned = found?.n ?? 0;
  const shown = ids.slice(0, limit);
  const { rows } = shown.length === 0
    ? { rows: [] as LogEntry[] }
    : await db.query<LogEntry>(prepared(
      `SELECT ${LOG_ENTRY_COLUMNS} FROM ${f.schema}.log_entry WHERE id = ANY($1::bigint[]) ORDER BY id DESC`, [shown], exactJsonTypes));
  const bound = cursor?.bound === undefined ? '' : `:${cursor.bound}`;
  if (ids.length > limit) return { entries: rows, nextCursor: `${shown[shown.length - 1]}${bound}`, scanned, partial: false };
  // The scan stopped at its limit: older entries were not looked at yet.
  if (scanned === scanLimit && found?.lo) return { entries: rows, nextCursor: `${found.lo}${bound}`, scanned, partial: true };
  return { entries: rows, nextCursor: null, scanned, partial: false };
}
