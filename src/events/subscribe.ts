// subscribe(): one loop per subscriber. Wake on a notification (or a poll tick), fetch a batch
// with the cursor, hand it to the hook until the hook succeeds, store the cursor, repeat.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Pool } from 'pg';
import { AuditLogError } from '../errors';
import { parseQualifiedName } from '../ident';
import type { LogEntry, PostLogHook, SubscribeOptions, Subscription } from '../interfaces';
import { backoffDelay, sleep, type BackoffOptions } from './backoff';
import { advanceCursor, fetchBatch, loadCursor, openCursor, type CursorState } from './cursor';
import { startListener } from './listener';
import { channelSql, eventsInstalledSql, type FilterParams } from './sql';

/** With nothing to deliver, store the cursor at least this often, so its horizon keeps up. */
const IDLE_ADVANCE_MS = 5_000;

interface Settings {
  schema: string;
  name: string | undefined;
  startNow: boolean;
  batchSize: number;
  maxBatchBytes: number;
  pollIntervalMs: number;
  backoff: BackoffOptions;
  filter: FilterParams;
  log: (line: string) => void;
}

function validate(options: SubscribeOptions): Settings {
  const problems: string[] = [];
  const o = (options ?? {}) as Partial<SubscribeOptions>;
  if (typeof o.connectionString !== 'string' || o.connectionString === '') problems.push('connectionString must be a non-empty string');
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === '' || o.name.includes('\0'))) {
    problems.push('name must be a non-empty string (or left out for an in-memory cursor)');
  }
  const schema = o.schema ?? 'auditlog';
  if (typeof schema !== 'string' || schema === '' || schema.includes('\0')) problems.push('schema must be a non-empty string');
  const positiveInt = (key: string, value: unknown, fallback: number) => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) problems.push(`${key} must be a positive integer, got ${String(value)}`);
    return value as number;
  };
  const strings = (key: keyof SubscribeOptions, value: unknown): string[] | null => {
    if (value === undefined) return null;
    if (!Array.isArray(value) || value.length === 0 || value.some((v) => typeof v !== 'string')) {
      problems.push(`${key} must be a non-empty array of strings (leave it out to match all)`);
      return null;
    }
    return value as string[];
  };
  const tables = strings('tables', o.tables)?.map((t) => {
    const q = parseQualifiedName(t);
    if (!q) problems.push(`tables: "${t}" is not a table name; write schema.table or table`);
    return q;
  });
  if (o.startFrom !== undefined && o.startFrom !== 'beginning' && o.startFrom !== 'now') {
    problems.push(`startFrom must be "beginning" or "now", got ${JSON.stringify(o.startFrom)}`);
  }
  const backoff = {
    minDelayMs: positiveInt('retry.minDelayMs', o.retry?.minDelayMs, 100),
    maxDelayMs: positiveInt('retry.maxDelayMs', o.retry?.maxDelayMs, 10_000),
  };
  const settings: Settings = {
    schema,
    name: o.name,
    startNow: (o.startFrom ?? (o.name === undefined ? 'now' : 'beginning')) === 'now',
    batchSize: positiveInt('batchSize', o.batchSize, 500),
    maxBatchBytes: positiveInt('maxBatchBytes', o.maxBatchBytes, 16 * 1024 * 1024),
    pollIntervalMs: positiveInt('pollIntervalMs', o.pollIntervalMs, 1000),
    backoff: { ...backoff, maxDelayMs: Math.max(backoff.minDelayMs, backoff.maxDelayMs) },
    filter: {
      schemas: tables ? tables.map((t) => t?.schema ?? '') : null,
      names: tables ? tables.map((t) => t?.name ?? '') : null,
      actions: strings('actions', o.actions),
      actors: strings('actors', o.actors),
    },
    log: o.log ?? ((line) => console.warn(`pg-auditlog: ${line}`)),
  };
  if (problems.length > 0) {
    throw new AuditLogError('OPTIONS_INVALID', `invalid subscribe() options: ${problems.join('; ')}`, { problems });
  }
  return settings;
}

/**
 * After a notification, look again every TRAIL_STEP_MS for TRAIL_MS: only one transaction per
 * 10 ms window notifies (sql/2_events.sql), so entries of a transaction that skipped and
 * committed just after the notifier are found without waiting for the poll interval.
 */
const TRAIL_MS = 60;
const TRAIL_STEP_MS = 10;

function describe(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return `${e?.message ?? String(err)}${e?.code && !(err instanceof AuditLogError) ? ` (SQLSTATE ${e.code})` : ''}`;
}

/**
 * Calls `hook` with every committed log entry that matches the filter, in batches, at least
 * once each, resuming from the named cursor. Resolves once listening and caught-up delivery has
 * started; throws OPTIONS_INVALID, EVENTS_NOT_INSTALLED or LISTENER_FAILED when it cannot start.
 */
export async function subscribe(options: SubscribeOptions, hook: PostLogHook): Promise<Subscription> {
  const s = validate(options);
  if (typeof hook !== 'function') throw new AuditLogError('OPTIONS_INVALID', 'subscribe() needs a hook function as its second argument');
  const label = s.name === undefined ? 'in-memory subscriber' : `subscriber "${s.name}"`;

  const pool = new Pool({
    connectionString: options.connectionString,
    max: 1,
    application_name: `pg-auditlog ${s.name ?? 'tail'}`.slice(0, 63),
  });
  // An idle connection that dies (server restart, pg_terminate_backend) is dropped and replaced
  // by the pool on the next query; without this handler it would crash the process.
  pool.on('error', (err) => s.log(`${label}: query connection lost (${err.message}); it is reopened on the next query`));

  let state: CursorState;
  let channel: string;
  try {
    const installed = eventsInstalledSql(s.schema);
    const { rows } = await pool.query<{ installed: boolean }>(installed.text, installed.values);
    if (!rows[0]?.installed) {
      throw new AuditLogError('EVENTS_NOT_INSTALLED',
        `audit schema "${s.schema}" has no event support (migration 2_events.sql is not applied): run auditlog install`);
    }
    const channelQuery = channelSql(s.schema);
    channel = (await pool.query<{ channel: string }>(channelQuery.text, channelQuery.values)).rows[0]!.channel;
    state = await openCursor(pool, s.schema, s.name, s.startNow);
  } catch (err) {
    await pool.end().catch(() => undefined);
    if (err instanceof AuditLogError) throw err;
    throw new AuditLogError('SUBSCRIBER_FAILED', `${label} could not start: ${describe(err)}`, { cause: err });
  }

  const emitter = new EventEmitter();
  const emitError = (err: AuditLogError) => {
    if (emitter.listenerCount('error') > 0) emitter.emit('error', err);
    else s.log(err.message);
  };

  const closing = new AbortController();
  let pending = true; // catch up at start
  let waiter: AbortController | null = null;
  let trailUntil = 0;
  const poke = () => {
    pending = true;
    waiter?.abort();
  };

  let listener;
  try {
    listener = await startListener({
      connection: { connectionString: options.connectionString, application_name: `pg-auditlog ${s.name ?? 'tail'} listen`.slice(0, 63) },
      channel,
      backoff: s.backoff,
      log: (line) => s.log(`${label}: ${line}`),
      // The payload names only the notifying statement, not every entry it wakes us for.
      onNotification: () => { trailUntil = Date.now() + TRAIL_MS; poke(); },
      onReconnected: poke,
      onError: emitError,
    });
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }

  /** Hands the batch to the hook until it succeeds; false when closed first. */
  async function deliver(batch: LogEntry[]): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await hook(batch);
        return true;
      } catch (err) {
        const delay = backoffDelay(attempt, s.backoff);
        emitError(new AuditLogError('HOOK_FAILED',
          `${label}: hook failed on entries ${batch[0]!.id}..${batch[batch.length - 1]!.id} (attempt ${attempt}): ${describe(err)}; retrying in ${delay} ms`,
          { cause: err }));
        if (closing.signal.aborted) return false;
        await sleep(delay, closing.signal);
        if (closing.signal.aborted) return false;
      }
    }
  }

  const token = randomUUID();
  let lastAdvance = Date.now();
  let dirty = false; // delivered since the cursor last caught up while idle

  /** One round: returns how many entries were delivered (0: nothing waiting). */
  async function step(): Promise<number> {
    const batch = await fetchBatch(pool, s.schema, state, s);
    if (batch.length === 0) {
      if (state.delivered.length > 0 || dirty || Date.now() - lastAdvance > IDLE_ADVANCE_MS) {
        await advance([]);
        dirty = false;
      }
      return 0;
    }
    if (!(await deliver(batch))) return 0;
    // Stored even when closing: close() drains, so a handled batch is not delivered again.
    await advance(batch);
    dirty = true;
    try {
      emitter.emit('delivered', batch);
    } catch (err) {
      s.log(`${label}: a "delivered" listener threw: ${describe(err)}`); // the batch is stored; nothing to retry
    }
    return batch.length;
  }

  async function advance(batch: LogEntry[]): Promise<void> {
    const next = await advanceCursor(pool, s.schema, s.name, token, state, batch, s.filter);
    if (next !== null) {
      state = next;
    } else {
      const stored = await loadCursor(pool, s.schema, s.name!);
      if (stored === null) {
        s.log(`${label}: its cursor row was deleted; starting it again from ${s.startNow ? 'now' : 'the beginning'}`);
        state = await openCursor(pool, s.schema, s.name, s.startNow);
      } else if (stored.storedBy !== token) {
        // Adopting the stored position never skips: whoever stored it delivered what it covers.
        s.log(`${label}: another process stored this cursor meanwhile: two subscribers are using the name "${s.name}", so each entry reaches at least one of them (some reach both); give each consumer its own name. Continuing from the stored position`);
        state = stored;
      } else {
        state = stored; // our own store went through, only its reply was lost
      }
    }
    lastAdvance = Date.now();
  }

  async function loop(): Promise<void> {
    let failures = 0;
    while (!closing.signal.aborted) {
      pending = false;
      try {
        const delivered = await step();
        failures = 0;
        if (delivered > 0) continue; // more may be waiting
      } catch (err) {
        if (closing.signal.aborted) break;
        failures++;
        const delay = backoffDelay(failures, s.backoff);
        emitError(new AuditLogError('SUBSCRIBER_FAILED', `${label}: reading or storing the cursor failed: ${describe(err)}; retrying in ${delay} ms`, { cause: err }));
        await sleep(delay, closing.signal);
        pending = true;
        continue;
      }
      if (pending || closing.signal.aborted) continue;
      // poke() (a notification, a reconnect, close()) ends the wait early.
      waiter = new AbortController();
      await sleep(Date.now() < trailUntil ? Math.min(TRAIL_STEP_MS, s.pollIntervalMs) : s.pollIntervalMs, waiter.signal);
      waiter = null;
    }
  }
  const running = loop();

  let closed: Promise<void> | undefined;
  const subscription: Subscription = {
    name: s.name,
    on(event: 'error' | 'delivered', fn: (...args: any[]) => void) {
      emitter.on(event, fn);
      return subscription;
    },
    off(event, fn) {
      emitter.off(event, fn);
      return subscription;
    },
    close() {
      closed ??= (async () => {
        closing.abort();
        poke();
        await running;
        await listener.close();
        await pool.end().catch(() => undefined);
      })();
      return closed;
    },
  };
  return subscription;
}
