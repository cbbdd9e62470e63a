// auditPool(): a pg.Pool that carries the ambient audit context into the database,
// transaction-locally, in the round trips the application makes anyway.
//
// It is a Proxy over the caller's pool: every property, method and event is the pool's own
// (instanceof pg.Pool still holds), except connect() and query(), and the query() of the
// clients it hands out. With no ambient context those pass straight through.
//
// With a context, per statement on a checked-out client:
// - BEGIN / START TRANSACTION (and COMMIT AND CHAIN): sent as one simple query with the
//   set_config() calls right after it: `BEGIN; SELECT pg_catalog.set_config(…)`. 0 extra round trips.
// - a statement outside a transaction: the set_config() call goes in front of it in the same
//   implicit transaction, in the same round trip. Simple query: `SELECT set_config(…); <text>`.
//   Extended query (parameters, prepared, cursors, streams): Parse/Bind/Execute of the
//   set_config statement written just before the statement's own messages, before one Sync.
//   The implicit transaction ends at that Sync, and the settings with it. 0 extra round trips.
// - inside a transaction: passed through (its BEGIN carried the context).
// The set_config() result never reaches the caller: its messages are swallowed.
import type { Pool, PoolClient } from 'pg';
import { getAuditContext } from '../session/context';
import { settingPairs } from '../session';
import { quoteLiteral } from '../ident';
import type { AuditContext } from '../interfaces';
import { withTraceId } from './otel';
import { classify } from './statement';

const AUDITED = Symbol.for('pg-auditlog.auditPool');

/** The parts of pg's Connection that a submitted query writes to (the ones pg-cursor uses too). */
interface Connection {
  parse(config: { text: string; name?: string; types?: number[] }, more?: boolean): void;
  bind(config: { portal?: string; statement?: string; values?: unknown[] }, more?: boolean): void;
  execute(config: { portal?: string; rows?: number }, more?: boolean): void;
  sync(): void;
  query(text: string): void;
  stream: { cork?: () => void; uncork?: () => void };
}

/** A pg query object as pg's Client drives it (pg's Query, pg-cursor, pg-query-stream, …). */
interface Submittable {
  submit(connection: Connection): Error | null | undefined | void;
  callback?: (err: Error | null, res?: unknown) => void;
  text?: string;
  values?: unknown[];
  name?: string;
  queryMode?: string;
  rows?: number;
  binary?: boolean;
  _result?: unknown;
  [handler: string]: unknown;
}

type QueryCtor = new (config: unknown, values?: unknown, callback?: unknown) => Submittable;

interface RawClient extends PoolClient {
  readyForQuery?: boolean;
}

/** The context to apply now, with the OpenTelemetry trace id; undefined when there is none. */
function contextNow(): AuditContext | undefined {
  const ctx = getAuditContext();
  if (!ctx || Object.keys(ctx).length === 0) return undefined;
  return withTraceId(ctx);
}

function parameterSql(names: string[]): string {
  return `SELECT ${names.map((n, i) => `pg_catalog.set_config(${quoteLiteral(n)}, $${i + 1}, true)`).join(', ')}`;
}

function literalSql(names: string[], values: string[]): string {
  return `SELECT ${names.map((n, i) => `pg_catalog.set_config(${quoteLiteral(n)}, ${quoteLiteral(values[i]!)}, true)`).join(', ')}`;
}

const HANDLERS = [
  'handleRowDescription', 'handleDataRow', 'handleCommandComplete', 'handleEmptyQuery',
  'handlePortalSuspended', 'handleError', 'handleReadyForQuery', 'handleCopyInResponse', 'handleCopyData',
] as const;

/**
 * A query with the context statement added to it (before it, or right after its BEGIN). Every
 * message of the added statement is swallowed; everything else goes to the inner query.
 * pg's Client reads name/text/callback/_result/binary of its active query: they are the inner's.
 */
class ContextQuery {
  private statement = 0;
  private deferredError: Error | undefined;
  private finished = false;

  constructor(
    private readonly inner: Submittable,
    private readonly how:
      | { kind: 'prefix-simple'; sql: string }
      | { kind: 'prefix-extended'; sql: string; values: string[] }
      | { kind: 'after-begin'; sql: string; at: number },
    private readonly onDone: () => void,
  ) {
    for (const h of HANDLERS) {
      (this as Record<string, unknown>)[h] = (...args: unknown[]) => this.dispatch(h, args);
    }
  }

  get name() { return this.inner.name; }
  get text() { return this.inner.text; }
  get rows() { return this.inner.rows; }
  get _result() { return this.inner._result; }
  get binary() { return this.inner.binary; }
  set binary(value) { this.inner.binary = value; }
  get callback() { return this.inner.callback; }
  set callback(value) { this.inner.callback = value; }

  /** Index of the added statement among the statements the server answers for. */
  private get ours(): number {
    return this.how.kind === 'after-begin' ? 1 : 0;
  }

  submit(connection: Connection): Error | null {
    const how = this.how;
    if (how.kind === 'prefix-simple') {
      connection.query(`${how.sql};\n${this.inner.text}`);
      return null;
    }
    if (how.kind === 'after-begin') {
      const text = this.inner.text!;
      connection.query(`${text.slice(0, how.at)};\n${how.sql}${text.slice(how.at)}`);
      return null;
    }
    connection.stream.cork?.();
    try {
      connection.parse({ text: how.sql }, true);
      connection.bind({ values: how.values }, true);
      connection.execute({ rows: 0 }, true);
      const err = this.inner.submit(connection);
      if (err) {
        // Our statement is on the wire: finish it with a Sync, report the error once it is answered.
        this.deferredError = err;
        connection.sync();
      }
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  private dispatch(handler: (typeof HANDLERS)[number], args: unknown[]): unknown {
    if ((handler === 'handleReadyForQuery' || handler === 'handleError') && !this.finished) {
      this.finished = true;
      this.onDone();
    }
    if (handler === 'handleError') this.shiftPosition(args[0]);
    if (handler === 'handleReadyForQuery' && this.deferredError) {
      const err = this.deferredError;
      this.deferredError = undefined;
      return this.call('handleError', [err, args[0]]);
    }
    if (handler === 'handleRowDescription' || handler === 'handleDataRow' || handler === 'handleCommandComplete') {
      const mine = this.statement === this.ours;
      if (handler === 'handleCommandComplete') this.statement++;
      if (mine) return undefined;
    }
    return this.call(handler, args);
  }

  /** A syntax error's position counts from the start of the text we sent: make it the caller's. */
  private shiftPosition(err: unknown): void {
    const how = this.how;
    if (how.kind === 'prefix-extended' || typeof err !== 'object' || err === null) return;
    const e = err as { position?: string };
    const position = Number(e.position);
    if (!Number.isInteger(position)) return;
    const added = how.sql.length + 2;
    const from = how.kind === 'prefix-simple' ? 0 : how.at;
    if (position > from + added) e.position = String(position - added);
  }

  private call(handler: string, args: unknown[]): unknown {
    const fn = this.inner[handler];
    return typeof fn === 'function' ? (fn as (...a: unknown[]) => unknown).apply(this.inner, args) : undefined;
  }
}

/** One wrapped client: its query() applies the context; the rest is the client's own. */
class ClientState {
  /** Predicted transaction state after everything submitted so far. */
  private inTransaction = false;
  private pending = 0;
  readonly proxy: PoolClient;

  constructor(private readonly raw: RawClient) {
    this.proxy = overlay(raw, { query: this.query.bind(this) });
  }

  private resync(): void {
    // With nothing in flight the server's own status is the truth (it also covers COMMITs
    // inside procedures and multi-statement strings we did not parse).
    if (this.pending === 0 && this.raw.readyForQuery === true) {
      const status = (this.raw.getTransactionStatus as (() => string | null) | undefined)?.call(this.raw);
      if (status === 'I') this.inTransaction = false;
      else if (status === 'T' || status === 'E') this.inTransaction = true;
    }
  }

  query(config: unknown, values?: unknown, callback?: unknown): unknown {
    return this.queryWith(contextNow(), config, values, callback);
  }

  queryWith(ctx: AuditContext | undefined, config: unknown, values?: unknown, callback?: unknown): unknown {
    if (config === null || config === undefined) return this.raw.query(config as never, values as never, callback as never);
    this.resync();
    const submittable = typeof (config as Submittable).submit === 'function';
    const text = submittable ? (config as Submittable).text : typeof config === 'string' ? config : (config as { text?: unknown }).text;
    const { kind, firstEnd } = typeof text === 'string' ? classify(text) : { kind: 'other' as const, firstEnd: undefined };
    const wasInTransaction = this.inTransaction;
    if (kind === 'begin' || kind === 'chain') this.inTransaction = true;
    else if (kind === 'end') this.inTransaction = false;

    const passThrough = () => (this.raw.query as (...a: unknown[]) => unknown)(config, values, callback);
    if (!ctx) return passThrough();
    const Query = (this.raw.constructor as { Query?: QueryCtor }).Query;
    const begins = kind === 'begin' || kind === 'chain';
    // pg-native has no protocol connection, pipeline mode refuses custom query objects: as is.
    const raw = this.raw as unknown as { connection?: unknown; pipeline?: boolean };
    if (!Query || !raw.connection || raw.pipeline || kind === 'standalone' || kind === 'savepoint' || kind === 'end' || (!begins && wasInTransaction)) {
      return passThrough();
    }
    let names: string[];
    let settings: string[];
    try {
      ({ names, values: settings } = settingPairs(ctx));
    } catch (err) {
      // An invalid context fails the query the way a query fails: through its callback or promise.
      const cb = [callback, values, (config as Submittable).callback].find((f) => typeof f === 'function') as
        ((e: unknown) => void) | undefined;
      if (cb) return void process.nextTick(cb, err);
      return Promise.reject(err);
    }

    // A foreign submittable (pg-cursor, pg-query-stream, …): our statement goes in front of its
    // extended-protocol messages; the caller gets its own object back, as from pg.
    if (submittable) {
      const inner = config as Submittable;
      if (!inner.callback) {
        if (typeof values === 'function') inner.callback = values as Submittable['callback'];
        else if (typeof callback === 'function') inner.callback = callback as Submittable['callback'];
      }
      if (begins) return passThrough();
      this.submit(new ContextQuery(inner, { kind: 'prefix-extended', sql: parameterSql(names), values: settings }, this.done));
      return inner;
    }

    const inner = new Query(config, values, callback);
    let result: Promise<unknown> | undefined;
    if (!inner.callback) {
      result = new Promise((resolve, reject) => {
        inner.callback = (err, res) => (err ? reject(err) : resolve(res));
      });
    }
    const simple = !(inner.queryMode === 'extended' || inner.name || inner.rows ||
      (Array.isArray(inner.values) && inner.values.length > 0));
    if (begins) {
      if (firstEnd === undefined || !simple) {
        // A BEGIN we cannot extend in place: the settings follow as their own query.
        const r = passThrough();
        (this.raw.query as (...a: unknown[]) => Promise<unknown>)(parameterSql(names), settings).catch(() => undefined);
        return r;
      }
      this.submit(new ContextQuery(inner, { kind: 'after-begin', sql: literalSql(names, settings), at: firstEnd }, this.done));
    } else if (simple) {
      if (typeof inner.text !== 'string' || inner.text.trim() === '') return passThrough();
      this.submit(new ContextQuery(inner, { kind: 'prefix-simple', sql: literalSql(names, settings) }, this.done));
    } else {
      this.submit(new ContextQuery(inner, { kind: 'prefix-extended', sql: parameterSql(names), values: settings }, this.done));
    }
    return result;
  }

  private readonly done = () => {
    this.pending = Math.max(0, this.pending - 1);
  };

  private submit(query: ContextQuery): void {
    this.pending++;
    (this.raw.query as (q: unknown) => unknown)(query);
  }
}

/**
 * A Proxy that answers `overrides` itself and everything else from `target`, methods bound to
 * the target (so pg's own internals never run through the proxy). Marked as audited.
 */
function overlay<T extends object>(target: T, overrides: Record<string, unknown>): T {
  const bound = new Map<PropertyKey, { original: unknown; bound: unknown }>();
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === 'string' && Object.hasOwn(overrides, prop)) return overrides[prop];
      if (prop === AUDITED) return true;
      const value = Reflect.get(t, prop, t);
      if (typeof value !== 'function') return value;
      let fn = bound.get(prop);
      if (!fn || fn.original !== value) {
        fn = { original: value, bound: (value as (...a: unknown[]) => unknown).bind(t) };
        bound.set(prop, fn);
      }
      return fn.bound;
    },
  });
}

const states = new WeakMap<object, ClientState>();

function wrapClient(raw: PoolClient): PoolClient {
  let state = states.get(raw);
  if (!state) {
    state = new ClientState(raw as RawClient);
    states.set(raw, state);
  }
  return state.proxy;
}

function stateOf(raw: PoolClient): ClientState {
  wrapClient(raw);
  return states.get(raw)!;
}

/**
 * A drop-in pg.Pool that applies the ambient audit context (runWithAuditContext, the
 * middleware, withAuditSession) to every transaction and every single statement,
 * transaction-locally, without extra round trips. With no ambient context it is the bare pool.
 */
export function auditPool<P extends Pool>(pool: P): P {
  if ((pool as unknown as Record<symbol, unknown>)[AUDITED]) return pool;

  function connect(callback?: (err: Error | undefined, client?: PoolClient, release?: (err?: Error | boolean) => void) => void): unknown {
    if (typeof callback === 'function') {
      pool.connect((err, client, release) => {
        if (err || !client) return callback(err);
        callback(undefined, wrapClient(client), release);
      });
      return undefined;
    }
    return pool.connect().then(wrapClient);
  }

  function query(text: unknown, values?: unknown, callback?: unknown): unknown {
    const ctx = contextNow();
    if (!ctx || text === null || text === undefined || typeof (text as Submittable).submit === 'function') {
      return (pool.query as (...a: unknown[]) => unknown).apply(pool, [text, values, callback].slice(0, arguments.length));
    }
    if (typeof values === 'function') {
      callback = values;
      values = undefined;
    }
    // As pg-pool's own query(): check out, run, release (destroying the client on error).
    const run = async () => {
      const client = await pool.connect();
      let failure: Error | undefined;
      try {
        return await (stateOf(client).queryWith(ctx, text, values) as Promise<unknown>);
      } catch (err) {
        failure = err as Error;
        throw err;
      } finally {
        client.release(failure);
      }
    };
    const promise = run();
    if (typeof callback === 'function') {
      promise.then((res) => (callback as (e: unknown, r?: unknown) => void)(undefined, res),
        (err) => (callback as (e: unknown) => void)(err));
      return undefined;
    }
    return promise;
  }

  return overlay(pool, { connect, query });
}

/** For drivers that set the context themselves (postgres.js): names and values of the settings. */
export function auditSettings(ctx: AuditContext | undefined = contextNow()): { names: string[]; values: string[] } | undefined {
  return ctx ? settingPairs(ctx) : undefined;
}
