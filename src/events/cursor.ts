// The subscriber's position, and the two queries that use it: fetch the next batch, and move
// past a delivered batch. Why a horizon and not a last id: see sql/2_events.sql.
import type { Pool } from 'pg';
import { exactJsonTypes } from '../db';
import type { LogEntry } from '../interfaces';
import { advanceCursorSql, createCursorSql, fetchBatchSql, initialCursorSelect, loadCursorSql, type FilterParams } from './sql';

export interface CursorState {
  /** xid8 as text: every matching entry with txid below it has been delivered. */
  horizon: string;
  /** bigint as text: a split point; fresh entries are read along the primary key above it. */
  lastId: string;
  /** Ids (bigint as text) delivered whose txid >= horizon. */
  delivered: string[];
  /** bigint as text: the version this process last read or stored. */
  version: string;
  /** Token of the subscriber instance that stored this version. */
  storedBy: string | null;
}

/**
 * While one transaction stays open, the horizon cannot pass it and `delivered` grows with every
 * entry committed after it. Past this many, only entries of finished transactions are
 * delivered (they wait for the open one to end), which keeps the cursor row small.
 */
export const MAX_DELIVERED_ABOVE_HORIZON = 10_000;

interface CursorRow {
  horizon: string;
  last_id: string;
  delivered: string[];
  version: string;
  stored_by: string | null;
}

function toState(row: CursorRow): CursorState {
  return { horizon: row.horizon, lastId: String(row.last_id), delivered: row.delivered.map(String), version: String(row.version),
    storedBy: row.stored_by ?? null };
}

/** The named cursor (created on first use), or a fresh in-memory one when name is undefined. */
export async function openCursor(pool: Pool, schema: string, name: string | undefined, startNow: boolean): Promise<CursorState> {
  if (name === undefined) {
    const q = initialCursorSelect(schema, startNow);
    const { rows } = await pool.query<CursorRow>(q.text, q.values);
    return toState(rows[0]!);
  }
  const q = createCursorSql(schema, name, startNow);
  await pool.query(q.text, q.values);
  return (await loadCursor(pool, schema, name))!;
}

/** The stored named cursor, or null when its row does not exist. */
export async function loadCursor(pool: Pool, schema: string, name: string): Promise<CursorState | null> {
  const q = loadCursorSql(schema, name);
  const { rows } = await pool.query<CursorRow>(q.text, q.values);
  return rows.length === 0 ? null : toState(rows[0]!);
}

export interface FetchOptions {
  batchSize: number;
  maxBatchBytes: number;
  filter: FilterParams;
}

/** The next committed, matching, undelivered entries in id order (empty: nothing to do). */
export async function fetchBatch(pool: Pool, schema: string, state: CursorState, options: FetchOptions): Promise<LogEntry[]> {
  const onlyFinished = state.delivered.length >= MAX_DELIVERED_ABOVE_HORIZON;
  const q = fetchBatchSql(schema, {
    horizon: state.horizon, lastId: state.lastId, delivered: state.delivered, batchSize: options.batchSize,
    maxBytes: options.maxBatchBytes, onlyFinished, filter: options.filter,
  });
  // Values exactly as stored (src/json.ts).
  const { rows } = await pool.query<LogEntry>({ text: q.text, values: q.values, types: exactJsonTypes });
  return rows;
}

/**
 * The cursor after `batch` was handled; stored first when the cursor is named. With an empty
 * batch (idle), last_id may jump to the newest visible entry so the next fetch reads less.
 * Null when the named cursor's row changed meanwhile: deleted (reset), or stored by another
 * process using the same name.
 */
export async function advanceCursor(
  pool: Pool, schema: string, name: string | undefined, token: string, state: CursorState, batch: LogEntry[], filter: FilterParams,
): Promise<CursorState | null> {
  const delivered = [...new Set([...state.delivered, ...batch.map((e) => String(e.id))])];
  const lastId = batch.reduce((max, e) => (BigInt(e.id) > BigInt(max) ? String(e.id) : max), state.lastId);
  const q = advanceCursorSql(schema, {
    name, horizon: state.horizon, delivered, lastId, jump: batch.length === 0, filter, version: state.version, token,
  });
  const { rows } = await pool.query<CursorRow>(q.text, q.values);
  return rows.length === 0 ? null : toState(rows[0]!);
}
