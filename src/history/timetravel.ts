// Time travel: the state of one object at an instant, replayed from its entries.
import type { HistoryOptions, LogEntry, ObjectKey } from '../interfaces';
import { keysJson, objectPkIn, parseInstant, parseTable, schemaOf, type Db } from './common';

type Row = Record<string, unknown>;

/** Replays entries (oldest first) of one object; custom events leave the state as it is. */
export function replay(entries: Array<Pick<LogEntry, 'action' | 'changes' | 'snapshot'>>): Row | null {
  let state: Row | null = null;
  for (const e of entries) {
    switch (e.action) {
      case 'insert':
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

/**
 * The object's tracked columns as they were at `at` (masked columns as "[masked]"), or null
 * when it did not exist then. An entry belongs to the instant its transaction started (ts).
 */
export async function stateAt(
  db: Db, table: string, objectPk: ObjectKey, at: Date | string, options: HistoryOptions = {},
): Promise<Row | null> {
  const schema = schemaOf(options);
  const t = parseTable(table);
  // Entries for the object, plus truncates of its table (object_pk NULL), in id order: row
  // locks serialise writers of one row, so id order is commit order for one object. The
  // object's entries are few: MATERIALIZED keeps the time filter out of the index scan, where
  // the planner would AND it with BRIN(ts) and read whole page ranges.
  const { rows } = await db.query<Pick<LogEntry, 'action' | 'changes' | 'snapshot'>>(
    `WITH object_entries AS MATERIALIZED (
       SELECT id, ts, action, changes, snapshot FROM ${schema}.log_entry
       WHERE table_name = $1 AND table_schema = $2
         AND (${objectPkIn(schema, '$3')} OR (object_pk IS NULL AND action = 'truncate')))
     SELECT action, changes, snapshot FROM object_entries
     WHERE ts <= $4::timestamptz
     ORDER BY id`,
    [t.name, t.schema, keysJson([objectPk]), parseInstant(at, 'at')],
  );
  return replay(rows);
}
