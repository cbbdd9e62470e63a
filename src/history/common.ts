// What the history functions share: argument checks (tables, keys, instants), the audit
// schema name, running writes inside the caller's audit session, reading table configs.
import type { ClientBase } from 'pg';
import sql, { raw, type Sql } from 'sql-template-tag';
import { isPool, type Db } from '../db';
import { AuditLogError, PG } from '../errors';
import { parseQualifiedName, quoteIdent, type QualifiedName } from '../ident';
import type { HistoryOptions, ObjectKey } from '../interfaces';
import { currentAuditContext, withAuditSession } from '../session';

// History modules import Db from here.
export type { Db };

/**
 * The log entry's columns, named rather than `*`: reads are prepared statements kept by each
 * connection, and a prepared `SELECT *` fails ("cached plan must not change result type")
 * once a later migration adds a column while an application is running.
 */
export const LOG_ENTRY_COLUMNS = 'id, ts, txid, table_schema, table_name, object_pk, object_repr, action, changes, '
  + 'snapshot, actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id';

/** The quoted audit schema. */
export function schemaOf(options: HistoryOptions | undefined): string {
  const schema = options?.schema ?? 'auditlog';
  if (typeof schema !== 'string' || schema === '' || schema.includes('\0')) {
    throw new AuditLogError('INVALID_ARGUMENT', 'schema must be a non-empty schema name, e.g. "auditlog"');
  }
  return quoteIdent(schema);
}

export function invalid(message: string): AuditLogError {
  return new AuditLogError('INVALID_ARGUMENT', message);
}

/** "schema.table" or "table" (schema public), with SQL identifier rules. */
export function parseTable(text: string, what = 'table'): QualifiedName {
  const name = typeof text === 'string' ? parseQualifiedName(text) : null;
  if (!name) throw invalid(`${what} ${JSON.stringify(text)} is not a table name; write "schema.table" or "table"`);
  return name;
}

/**
 * Keys as JSON text for the SQL pk_text() function, which formats them as the triggers do.
 * Built by hand so a bigint part of a composite key stays a JSON number with every digit
 * (JSON.stringify cannot write one; a string would not match the number the trigger wrote).
 */
export function keysJson(keys: ObjectKey[]): string {
  const scalar = (k: unknown): string => {
    if (typeof k === 'bigint') return k.toString();
    if (typeof k === 'number' && Number.isFinite(k)) return JSON.stringify(k);
    if (typeof k === 'string' || typeof k === 'boolean' || k === null) return JSON.stringify(k);
    throw invalid(`key part ${String(k)} must be a string, number, bigint, boolean or null`);
  };
  const one = (k: unknown): string => {
    // A one-column key is its text: a bigint or number becomes the same text either way.
    if (typeof k === 'bigint') return JSON.stringify(k.toString());
    if (typeof k === 'string' || (typeof k === 'number' && Number.isFinite(k))) return JSON.stringify(k);
    if (Array.isArray(k) && k.length > 0) return `[${k.map(scalar).join(',')}]`;
    throw invalid(`object key ${typeof k === 'object' ? JSON.stringify(k) : String(k)} must be a string, a number or a non-empty array (composite key)`);
  };
  return `[${keys.map(one).join(',')}]`;
}

/** SQL matching object_pk against `keys` (one parameter, keysJson's JSON array), index-friendly. */
export function objectPkIn(schema: string, keys: ObjectKey[]): Sql {
  return sql`object_pk = ANY(ARRAY(SELECT ${raw(schema)}.pk_text(k) FROM jsonb_array_elements(${keysJson(keys)}::jsonb) AS k))`;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|[+-](\d{2}):?(\d{2}))$/;

/**
 * An instant as PostgreSQL timestamptz text. Accepts a Date, an ISO 8601 date (midnight UTC)
 * or an ISO 8601 date-time with Z or an offset; refuses anything else (local times, "yesterday",
 * 01/02/2026…), since a misread date would delete or show the wrong entries.
 */
export function parseInstant(value: Date | string, what: string): string {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw invalid(`${what} is an invalid Date`);
    return value.toISOString();
  }
  const text = typeof value === 'string' ? value.trim() : '';
  const example = 'e.g. 2026-01-31 or 2026-01-31T14:00:00Z or 2026-01-31T14:00:00+01:00';
  let m = DATE.exec(text);
  if (m) {
    checkDate(m, value, what, example);
    return `${text}T00:00:00Z`;
  }
  m = DATE_TIME.exec(text);
  if (m) {
    checkDate(m, value, what, example);
    const [hour, minute, second] = [Number(m[4]), Number(m[5]), Number(m[6] ?? 0)];
    const offsetOk = m[7] === 'Z' || (Number(m[8]) <= 15 && Number(m[9]) <= 59);
    if (hour > 23 || minute > 59 || second > 59 || !offsetOk) {
      throw invalid(`${what} ${JSON.stringify(value)} is not a valid time of day; ${example}`);
    }
    return text;
  }
  const hint = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)
    ? ' (add Z or an offset such as +01:00: a time without zone is ambiguous)'
    : '';
  throw invalid(`${what} ${JSON.stringify(value)} is not an ISO 8601 date or date-time${hint}; ${example}`);
}

function checkDate(m: RegExpExecArray, value: string, what: string, example: string): void {
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) {
    throw invalid(`${what} ${JSON.stringify(value)} is not a calendar date; ${example}`);
  }
}

/** Runs fn on a client in the caller's audit session, so what it writes carries the context. */
export async function inCallerSession<T>(db: Db, fn: (client: ClientBase) => Promise<T>): Promise<T> {
  // A pool: join the enclosing withAuditSession() (same pool: same client and transaction) or
  // open a transaction with the current context. A client: its own settings already apply.
  if (isPool(db)) return withAuditSession(db, currentAuditContext() ?? {}, fn);
  return fn(db);
}

/** What readers need of the table's installed capture, derived from tracked_table.config. */
export interface StoredTableConfig {
  mapping?: Record<string, string>;
  mask?: string[];
  exclude?: string[];
  /** The tracked columns. */
  include?: string[];
  primaryKey?: string[];
}

/** tracked_table.config holds the resolved plan the capture was generated from (TablePlan). */
interface StoredPlan {
  columns?: Array<{ name: string; masked: boolean }>;
  mapping?: Record<string, string>;
  primaryKey?: string[];
}

function fromPlan(plan: StoredPlan): StoredTableConfig {
  return {
    mapping: plan.mapping ?? {},
    mask: (plan.columns ?? []).filter((c) => c.masked).map((c) => c.name),
    include: plan.columns?.map((c) => c.name),
    exclude: [],
    primaryKey: plan.primaryKey,
  };
}

/**
 * The record with its keys in the table's column order (`columns`, from the installed plan);
 * keys that are not tracked columns (any more) follow in their stored order. jsonb itself
 * orders keys by length, then bytes (`id, total, status, user_id`).
 */
export function inColumnOrder<T>(record: Record<string, T>, columns: string[] | undefined): Record<string, T> {
  if (columns === undefined) return record;
  const out: Record<string, T> = {};
  for (const c of columns) if (Object.hasOwn(record, c)) out[c] = record[c]!;
  for (const [k, v] of Object.entries(record)) if (!Object.hasOwn(out, k)) out[k] = v;
  return out;
}

export async function readTableConfigs(db: Db, schema: string, tables: QualifiedName[]): Promise<Map<string, StoredTableConfig>> {
  const out = new Map<string, StoredTableConfig>();
  if (tables.length === 0) return out;
  const { rows } = await db.query<{ table_schema: string; table_name: string; config: StoredPlan | null }>(
    `SELECT table_schema, table_name, config FROM ${schema}.tracked_table
     WHERE (table_schema, table_name) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  for (const r of rows) out.set(`${r.table_schema}\0${r.table_name}`, fromPlan(r.config ?? {}));
  return out;
}

/**
 * A missing log table or history function means the audit schema is not installed (or not
 * upgraded): say so, instead of PostgreSQL's "relation does not exist".
 */
export function explainMissingSchema(err: unknown, schema: string): unknown {
  const code = (err as { code?: string }).code;
  const message = (err as Error).message ?? '';
  if (code === PG.UNDEFINED_TABLE && message.includes('log_entry')) {
    return new AuditLogError('NOT_FOUND', `audit schema "${schema}" has no log: run auditlog install, or pass --schema / the schema option`, { cause: err });
  }
  if (code === PG.UNDEFINED_FUNCTION && /pk_text|log_event|append_event/.test(message)) {
    return new AuditLogError('NOT_FOUND', `audit schema "${schema}" predates the history functions: run auditlog install to apply its pending migrations`, { cause: err });
  }
  return err;
}
