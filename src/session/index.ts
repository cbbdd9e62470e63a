// withAuditSession(): runs a function in a transaction whose audit context (actor, cid, …)
// is set with set_config(…, true), so it ends with the transaction and can never leak to the
// next user of a pooled connection.
import { isIP } from 'node:net';
import type { Pool, PoolClient, ClientBase } from 'pg';
import { inTransaction, isPool } from '../db';
import { quoteLiteral } from '../ident';
import { AuditLogError, PG } from '../errors';
import type { AuditContext } from '../interfaces';
import { ExactNumber, stringifyExactJson } from '../json';
import { ambient, extendContext, getAuditContext } from './context';

export { getAuditContext, serializeAuditContext } from './context';

/**
 * Runs `fn` with `ctx` as the ambient audit context. Nested calls extend the outer context
 * (their keys win; `data` is merged). `ctx` may be the output of serializeAuditContext(), or
 * null/undefined to run with the outer context unchanged. An invalid context throws
 * CONTEXT_INVALID here, before fn runs.
 */
export function runWithAuditContext<T>(ctx: AuditContext | null | undefined, fn: () => T): T {
  const outer = ambient.getStore();
  const context = extendContext(outer?.context, ctx);
  contextToSettings(context);
  return ambient.run({ ...outer, context }, fn);
}

/** The settings the capture triggers read. */
const SETTINGS = {
  actor: 'auditlog.actor',
  cid: 'auditlog.cid',
  remoteAddr: 'auditlog.remote_addr',
  data: 'auditlog.data',
  tenant: 'auditlog.tenant',
  // Read by the capture triggers' bypass check; honoured only for the bypass role.
  disable: 'auditlog.disable',
} as const;
export type Key = keyof typeof SETTINGS;
const KEYS = Object.keys(SETTINGS) as Key[];

let savepointCounter = 0;

/** The ambient audit context (withAuditSession, runWithAuditContext, middleware), if any. Same as getAuditContext(). */
export function currentAuditContext(): AuditContext | undefined {
  return getAuditContext();
}

/** The setting names and values of a context, in a fixed order (for drivers that set them themselves). */
export function settingPairs(ctx: AuditContext): { names: string[]; values: string[] } {
  const settings = contextToSettings(ctx);
  return { names: KEYS.map((k) => SETTINGS[k]), values: KEYS.map((k) => settings[k]) };
}

/** The statement that sets every context setting from two text arrays ($1 names, $2 values). */
export const SET_CONTEXT_SQL =
  'SELECT pg_catalog.set_config(name, value, true) FROM unnest($1::text[], $2::text[]) AS s(name, value)';

/** Context → setting values ('' clears a setting), validated so a bad value fails here, clearly. */
export function contextToSettings(ctx: AuditContext): Record<Key, string> {
  const problems: string[] = [];
  const text = (key: Key, value: unknown): string => {
    if (value === undefined || value === null) return '';
    if (typeof value !== 'string') {
      problems.push(`${key} must be a string, got ${typeof value}`);
      return '';
    }
    // PostgreSQL text cannot hold NUL or a lone surrogate; everything else is stored as given.
    const why = unstorableText(value);
    if (why) problems.push(`${key} ${why}`);
    return value;
  };
  for (const key of Object.keys(ctx)) {
    if (!(key in SETTINGS)) problems.push(`unknown context key "${key}"; expected ${KEYS.join(', ')}`);
  }
  const remoteAddr = text('remoteAddr', ctx.remoteAddr);
  if (remoteAddr.includes('%')) {
    problems.push(`remoteAddr "${remoteAddr}" has a zone index (%…), which PostgreSQL inet cannot store; pass the address without it`);
  } else if (remoteAddr !== '' && !isInet(remoteAddr)) {
    problems.push(`remoteAddr "${remoteAddr}" is not an IPv4 or IPv6 address`);
  }
  let data = '';
  if (ctx.data !== undefined && ctx.data !== null) {
    if (!isPlainObject(ctx.data)) {
      problems.push(`data must be a plain object, not ${describe(ctx.data)}`);
    } else {
      const before = problems.length;
      checkJsonValue(ctx.data, 'data', problems, new Set());
      if (problems.length === before) data = stringifyExactJson(ctx.data);
    }
  }
  if (ctx.disable !== undefined && typeof ctx.disable !== 'boolean') problems.push('disable must be true or false');
  const settings = {
    disable: ctx.disable === true ? 'on' : '',
    actor: text('actor', ctx.actor),
    cid: text('cid', ctx.cid),
    remoteAddr,
    data,
    tenant: text('tenant', ctx.tenant),
  };
  if (problems.length > 0) {
    throw new AuditLogError('CONTEXT_INVALID', `invalid audit context: ${problems.join('; ')}`, { problems });
  }
  return settings;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why PostgreSQL text (UTF-8) cannot hold the string exactly, or null. */
function unstorableText(value: string): string | null {
  if (value.includes('\0')) return 'contains a NUL character, which PostgreSQL cannot store';
  const m = LONE_SURROGATE.exec(value);
  if (m) {
    return `contains a lone surrogate (U+${m[0].charCodeAt(0).toString(16).toUpperCase()} at index ${m.index}), which is not ` +
      'valid Unicode and would be stored as U+FFFD; pass well-formed text';
  }
  return null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${(value as object).constructor?.name ?? 'object'} object`;
  return `a ${typeof value}`;
}

/**
 * Collects why `value` would not be stored exactly as JSON: JSON.stringify silently turns a
 * Date into a string, a Map or Set into {}, NaN into null, drops functions, and calls toJSON.
 * Allowed: null, booleans, strings, finite numbers, bigints and ExactNumbers (written with
 * their digits), arrays and plain objects of those. A property whose value is undefined is
 * left out, as JSON.stringify does.
 */
function checkJsonValue(value: unknown, path: string, problems: string[], seen: Set<object>): void {
  switch (typeof value) {
    case 'string': {
      const why = unstorableText(value);
      if (why) problems.push(`${path} ${why}`);
      return;
    }
    case 'boolean':
    case 'bigint':
      return;
    case 'number':
      if (!Number.isFinite(value)) problems.push(`${path} is ${value}, which JSON cannot hold (it would be stored as null)`);
      return;
    case 'object':
      break;
    default:
      problems.push(`${path} is a ${typeof value}, which JSON cannot hold`);
      return;
  }
  if (value === null || value instanceof ExactNumber) return;
  if (seen.has(value)) {
    problems.push(`${path} refers back to itself (a circular structure)`);
    return;
  }
  if (Array.isArray(value)) {
    seen.add(value);
    value.forEach((item, i) => {
      if (item === undefined) problems.push(`${path}[${i}] is undefined, which JSON would store as null`);
      else checkJsonValue(item, `${path}[${i}]`, problems, seen);
    });
    seen.delete(value);
    return;
  }
  if (!isPlainObject(value)) {
    problems.push(`${path} is ${describe(value)}, which JSON would not store as given (convert it, e.g. a Date with toISOString())`);
    return;
  }
  seen.add(value);
  for (const [k, v] of Object.entries(value)) {
    const why = unstorableText(k);
    if (why) problems.push(`${path} has a key that ${why}`);
    if (v !== undefined) checkJsonValue(v, `${path}.${k}`, problems, seen);
  }
  seen.delete(value);
}

function isInet(value: string): boolean {
  const [addr, prefix, ...rest] = value.split('/');
  if (rest.length > 0 || !addr) return false;
  const version = isIP(addr);
  if (version === 0) return false;
  if (prefix === undefined) return true;
  return /^\d+$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}

async function applySettings(client: ClientBase, settings: Record<Key, string>): Promise<void> {
  const names = KEYS.map((k) => SETTINGS[k]);
  const values = KEYS.map((k) => settings[k]);
  await client.query(SET_CONTEXT_SQL, [names, values]);
}

/**
 * BEGIN and the settings in one round trip: a simple-query string cannot carry parameters, so
 * the values are quoted literals (quoteLiteral; NUL was rejected by contextToSettings).
 */
function beginWith(settings: Record<Key, string>): string {
  return `BEGIN; ${setContextLiteral(settings)}`;
}

/** One SELECT that sets every context setting, values as quoted literals (for simple queries). */
export function setContextLiteral(settings: Record<Key, string>): string {
  const calls = KEYS.map((k) => `pg_catalog.set_config(${quoteLiteral(SETTINGS[k])}, ${quoteLiteral(settings[k])}, true)`);
  return `SELECT ${calls.join(', ')}`;
}

/** Runs fn between SAVEPOINT and RELEASE (rolled back to the savepoint on throw). */
async function inSavepoint<T>(client: ClientBase, fn: () => Promise<T>): Promise<T> {
  const name = `auditlog_session_${++savepointCounter}`;
  await client.query(`SAVEPOINT ${name}`);
  try {
    const result = await fn();
    await client.query(`RELEASE SAVEPOINT ${name}`);
    return result;
  } catch (err) {
    await client.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => undefined);
    throw err;
  }
}

/**
 * Runs `fn` with a client inside a transaction whose audit context is `ctx`.
 *
 * - Given a Pool: checks out one client, BEGIN, sets the context, runs fn, COMMIT (ROLLBACK
 *   if fn throws), and always releases the client.
 * - Given a client that is idle: the same, without checking out or releasing.
 * - Given a client already inside a transaction (yours): runs fn in a savepoint, with the
 *   context set for its duration and the previous one restored afterwards.
 * - Nested inside another withAuditSession() on the same pool or client: reuses the outer
 *   client in a savepoint; the inner context extends the outer one.
 */
export async function withAuditSession<T>(
  db: Pool | ClientBase,
  ctx: AuditContext,
  fn: (client: ClientBase) => Promise<T>,
): Promise<T> {
  const outer = ambient.getStore();
  const session = outer?.session;
  const nested = session !== undefined && (session.pool === db || session.client === db);
  // The ambient context (runWithAuditContext, middleware, an outer session) is extended.
  const context = extendContext(outer?.context, ctx);
  const settings = contextToSettings(context);

  if (nested) {
    return inSavepoint(session.client, async () => {
      await applySettings(session.client, settings);
      try {
        return await ambient.run({ session, context }, () => fn(session.client));
      } finally {
        // Back to the outer context for whatever the outer function does next.
        await applySettings(session.client, contextToSettings(outer!.context)).catch(() => undefined);
      }
    });
  }

  if (isPool(db)) {
    const client: PoolClient = await db.connect();
    let broken: Error | undefined;
    try {
      return await inTransaction(client,
        () => ambient.run({ session: { pool: db, client }, context }, () => fn(client)),
        (err) => { broken = err; }, beginWith(settings));
    } finally {
      // A connection that could not roll back is destroyed rather than handed to the next user.
      client.release(broken);
    }
  }

  const client = db;
  const status = client.getTransactionStatus?.();
  const aborted = (cause?: unknown) => new AuditLogError(
    'TRANSACTION_ABORTED', 'the client is in an aborted transaction: ROLLBACK before starting an audit session', { cause });
  if (status === 'E') throw aborted();
  const run = () => ambient.run({ session: { pool: null, client }, context }, () => fn(client));
  if (status === 'T') {
    // The status lags a failed query by one message, so the server may still say 25P02 here.
    const previous = await readSettings(client).catch((err: { code?: string }) => {
      throw err.code === PG.IN_FAILED_TRANSACTION ? aborted(err) : err;
    });
    return inSavepoint(client, async () => {
      await applySettings(client, settings);
      try {
        return await run();
      } finally {
        await applySettings(client, previous).catch(() => undefined);
      }
    });
  }
  return inTransaction(client, run, undefined, beginWith(settings));
}

async function readSettings(client: ClientBase): Promise<Record<Key, string>> {
  const { rows } = await client.query<{ values: string[] }>(
    `SELECT array_agg(coalesce(current_setting(name, true), '') ORDER BY ord) AS values
     FROM unnest($1::text[]) WITH ORDINALITY AS s(name, ord)`,
    [KEYS.map((k) => SETTINGS[k])],
  );
  const values = rows[0]!.values;
  return Object.fromEntries(KEYS.map((k, i) => [k, values[i] ?? ''])) as Record<Key, string>;
}
