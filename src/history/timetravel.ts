// Time travel: the state of one object at an instant, replayed from its entries.
import { exactJsonTypes, prepared } from '../db';
import type { HistoryOptions, LogEntry, ObjectKey, UnknownState } from '../interfaces';
import sql, { raw } from 'sql-template-tag';
import { inColumnOrder, objectPkIn, parseInstant, parseTable, readTableConfigs, schemaOf, type Db } from './common';

type Row = Record<string, unknown>;

/** Replays entries (oldest first) of one object; custom events leave the state as it is. */
export function replay(entries: Array<Pick<LogEntry, 'action' | 'changes' | 'snapshot'>>): Row | null {
  let state: Row | null = null;
  for (const e of entries) {
    switch (e.action) {
      case 'insert':
      case 'baseline': // a row that predates the log, recorded whole by auditlog baseline
        state = { ...(e.snapshot ?? newValues(e.changes)) };
        break;
      case 'update':
        // An update of an object never seen (entries flushed, or inserts not captured) still
        // yields what is known: the columns it set.
        state = { ...(state ?? {}), ...newValues(e.changes), ...(e.snapshot ?? {}) };
        break;
      case 'delete':
      case 'truncate':
        state = null;
        break;
      default:
        break;
    }
  }
  return state;
}

function newValues(changes: LogEntry['changes']): Row {
  const row: Row = {};
  for (const [column, pair] of Object.entries(changes ?? {})) row[column] = Array.isArray(pair) ? pair[1] : pair;
  return row;
}

/** A result of stateAt() that says the log cannot tell the state (see UnknownState). */
export function isUnknownState(value: unknown): value is UnknownState {
  return typeof value === 'object' && value !== null && (value as UnknownState).unknown === true && !Array.isArray(value)
    && Object.getPrototypeOf(value) === UNKNOWN_PROTO;
}

const UNKNOWN_PROTO = { toJSON(this: UnknownState) { return { unknown: true, reason: this.reason, earliest: this.earliest }; } };

function unknownState(reason: UnknownState['reason'], earliest: UnknownState['earliest']): UnknownState {
  return Object.assign(Object.create(UNKNOWN_PROTO) as UnknownState, { unknown: true as const, reason, earliest });
}

/**
 * The object's tracked columns as they were at `at`, in the table's column order (masked
 * columns as "[masked]"); null when it did not exist then (before its `insert` entry, or
 * after its delete); an UnknownState when the log cannot tell (before its earliest entry when
 * that is not an insert, e.g. before a `baseline` entry, or when it has no entries at all).
 * An entry belongs to the instant its transaction started (ts).
 */
export async function stateAt(
  db: Db, table: string, objectPk: ObjectKey, at: Date | string, options: HistoryOptions = {},
): Promise<Row | null | UnknownState> {
  const schema = schemaOf(options);
  const t = parseTable(table);
  // Entries for the object, plus truncates of its table (object_pk NULL), in id order: row
  // locks serialise writers of one row, so id order is commit order for one object. The
  // object's entries are few: MATERIALIZED keeps the time filter out of the index scan, where
  // the planner would AND it with BRIN(ts) and read whole page ranges. The object's own
  // earliest entry comes too, even after `at`: it tells "did not exist" (an insert) from
  // "unknown" (the row existed before its first entry).
  const instant = parseInstant(at, 'at');
  const query = sql`WITH object_entries AS MATERIALIZED (
       SELECT id, ts, action, changes, snapshot, object_pk FROM ${raw(schema)}.log_entry
       WHERE table_name = ${t.name} AND table_schema = ${t.schema}
         AND (${objectPkIn(schema, [objectPk])} OR (object_pk IS NULL AND action = 'truncate')))
     SELECT id, ts, action, changes, snapshot, ts <= ${instant}::timestamptz AS applies, object_pk IS NOT NULL AS own
     FROM object_entries
     WHERE ts <= ${instant}::timestamptz OR id = (SELECT min(id) FROM object_entries WHERE object_pk IS NOT NULL)
     ORDER BY id`;
  const { rows } = await db.query<Pick<LogEntry, 'id' | 'ts' | 'action' | 'changes' | 'snapshot'> & { applies: boolean; own: boolean }>(
    prepared(query.text, query.values, exactJsonTypes));
  // Truncates of the table before the row's first entry do not make it known.
  const first = rows.find((r) => r.own);
  if (!first) return unknownState('no-entries', null);
  if (!first.applies) {
    if (first.action === 'insert') return null;
    return unknownState(first.action === 'baseline' ? 'before-baseline' : 'before-first-entry',
      { id: first.id, ts: first.ts, action: first.action });
  }
  const state = replay(rows.filter((r) => r.applies));
  if (state === null) return null;
  const config = (await readTableConfigs(db, schema, [t])).get(`${t.schema}\0${t.name}`);
  return inColumnOrder(state, config?.include);
}
