// Post-log events: the NOTIFY trigger, subscribe() with durable cursors, filters, commit order,
// failing hooks, lost connections and clean shutdown, against a real server.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Client } from 'pg';
import { subscribe } from '../src';
import { AuditLogError } from '../src/errors';
import { MAX_DELIVERED_ABOVE_HORIZON } from '../src/events/cursor';
import { status } from '../src/install';
import type { LogEntry, SubscribeOptions, Subscription } from '../src/interfaces';
import { createTestDatabase, type TestDatabase, waitFor } from './helpers';

let db: TestDatabase;
const open: Subscription[] = [];

beforeAll(async () => {
  db = await createTestDatabase('events');
  await db.sql(`
    CREATE TABLE users (id serial PRIMARY KEY, email text, bio text);
    CREATE TABLE orders (id serial PRIMARY KEY, total int);
    CREATE TABLE notes (id serial PRIMARY KEY, body text);
  `);
  await db.install({ tables: { 'public.users': {}, 'public.orders': {}, 'public.notes': {} } });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

afterAll(() => db.drop());

/** A subscription whose hook records every delivered entry; closed after each test. */
async function collect(options: Partial<SubscribeOptions> = {}) {
  const seen: LogEntry[] = [];
  const errors: AuditLogError[] = [];
  const sub = await subscribe({ connectionString: db.url, pollIntervalMs: 200, log: () => undefined, ...options }, (entries) => {
    seen.push(...entries);
  });
  sub.on('error', (err) => errors.push(err));
  open.push(sub);
  return { sub, seen, errors, ids: () => seen.map((e) => Number(e.id)) };
}

async function maxId(): Promise<number> {
  const [row] = await db.sql('SELECT coalesce(max(id), 0)::int AS id FROM auditlog.log_entry');
  return row.id;
}

test('the trigger notifies id, count, table and action at commit, and nothing for a rollback', async () => {
  await db.withClient(async (listener) => {
    const payloads: string[] = [];
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.query('LISTEN "auditlog.events"');
    await db.withClient(async (c) => {
      await c.query('BEGIN');
      await c.query(`INSERT INTO users (email) VALUES ('rolled@example.com')`);
      await c.query('ROLLBACK');
      await c.query(`INSERT INTO users (email) VALUES ('kept@example.com')`);
    });
    await waitFor('a notification', () => payloads.length > 0);
    await new Promise((r) => setTimeout(r, 100));
    const [entry] = await db.entries(`object_repr IS NULL AND changes->'email'->>1 = 'kept@example.com'`);
    expect(payloads.map((p) => JSON.parse(p))).toEqual([
      { id: Number(entry!.id), count: 1, schema: 'public', table: 'users', action: 'insert' },
    ]);
  });
});

test('concurrent transactions send one notification per 10 ms window, and every entry still arrives without polling', async () => {
  const payloads: string[] = [];
  await db.withClient(async (listener) => {
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.query('LISTEN "auditlog.events"');
    const { seen } = await collect({ pollIntervalMs: 600_000, startFrom: 'now' });
    const before = await maxId();
    // Twenty transactions whose writes all happen while each holds its transaction open, so
    // most of them share a window with another one.
    const clients = await Promise.all(Array.from({ length: 20 }, async () => {
      const c = new Client(db.url);
      await c.connect();
      await c.query('BEGIN');
      return c;
    }));
    try {
      await Promise.all(clients.map((c, i) => c.query('INSERT INTO notes (body) VALUES ($1)', [`window ${i}`])));
      await Promise.all(clients.map((c) => c.query('COMMIT')));
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    await waitFor('all twenty entries', () => seen.filter((e) => Number(e.id) > before).length === 20, 5_000);
    expect(payloads.length).toBeGreaterThanOrEqual(1);
    expect(payloads.length).toBeLessThan(20);
  });
  await db.sql(`DELETE FROM notes WHERE body LIKE 'window %'`); // other tests update every note
});

test('a bulk statement sends one notification per table and action, not one per entry', async () => {
  await db.withClient(async (listener) => {
    const payloads: string[] = [];
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.query('LISTEN "auditlog.events"');
    await db.sql(`INSERT INTO users (email) SELECT 'bulk' || i || '@example.com' FROM generate_series(1, 500) i`);
    await waitFor('a notification', () => payloads.length > 0);
    await new Promise((r) => setTimeout(r, 100));
    const [last] = await db.sql(`SELECT max(id)::int AS id FROM auditlog.log_entry`);
    expect(payloads.map((p) => JSON.parse(p))).toEqual([{ id: last.id, count: 500, schema: 'public', table: 'users', action: 'insert' }]);
  });
});

test('a multi-megabyte row, or a huge custom action, never makes the write fail: the payload stays small', async () => {
  await db.withClient(async (listener) => {
    const payloads: string[] = [];
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.query('LISTEN "auditlog.events"');
    const big = 'ß'.repeat(2_000_000); // 4 MB of UTF-8
    await db.sql('INSERT INTO users (email, bio) VALUES ($1, $2)', [big, big]);
    await new Promise((r) => setTimeout(r, 20)); // the next 10 ms window: this one has notified
    await db.sql(`SELECT auditlog.log_event('export', $1, $2)`, ['ß'.repeat(10_000), 't'.repeat(10_000)]);
    await waitFor('two notifications', () => payloads.length === 2);
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8000);
    expect(JSON.parse(payloads[1]!)).toMatchObject({ schema: 'ß'.repeat(200), table: 't'.repeat(200), action: 'export', count: 1 });
  });
});

test('subscribe() delivers full, typed entries of committed writes, filtered by table, action and actor', async () => {
  const all = await collect({ startFrom: 'now' });
  const filtered = await collect({ startFrom: 'now', tables: ['users', 'public.orders'], actions: ['update'], actors: ['alice'] });
  await db.withClient(async (c) => {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('auditlog.actor', 'alice', true)`);
    await c.query(`INSERT INTO users (email) VALUES ('f1@example.com')`);
    await c.query(`UPDATE users SET email = 'f2@example.com' WHERE email = 'f1@example.com'`);
    await c.query(`INSERT INTO notes (body) VALUES ('n')`);
    await c.query(`UPDATE notes SET body = 'm'`);
    await c.query('COMMIT');
    await c.query(`UPDATE users SET email = 'f3@example.com' WHERE email = 'f2@example.com'`); // no actor
  });
  await waitFor('all five entries', () => all.seen.length === 5);
  await waitFor('the filtered entry', () => filtered.seen.length === 1);
  await new Promise((r) => setTimeout(r, 300));
  expect(filtered.seen).toHaveLength(1);
  const e = filtered.seen[0]!;
  expect(e).toMatchObject({
    table_schema: 'public', table_name: 'users', action: 'update', actor: 'alice',
    changes: { email: ['f1@example.com', 'f2@example.com'] },
  });
  expect(e.ts).toBeInstanceOf(Date);
  expect(typeof e.id).toBe('string');
  expect(all.ids()).toEqual([...all.ids()].sort((a, b) => a - b));
});

test('a named cursor catches up on entries written before it started, and resumes after a restart', async () => {
  const before = await maxId();
  await db.sql(`INSERT INTO orders (total) SELECT i FROM generate_series(1, 30) i`);
  const first = await collect({ name: 'catch-up', tables: ['orders'], batchSize: 7 });
  await waitFor('the backlog', () => first.seen.filter((e) => Number(e.id) > before).length === 30);
  await first.sub.close();

  await db.sql(`INSERT INTO orders (total) SELECT i FROM generate_series(31, 40) i`); // while stopped
  const second = await collect({ name: 'catch-up', tables: ['orders'] });
  await waitFor('the entries written while stopped', () => second.seen.length === 10);
  await new Promise((r) => setTimeout(r, 300));
  expect(second.seen.map((e) => (e.changes as any).total[1])).toEqual([31, 32, 33, 34, 35, 36, 37, 38, 39, 40]);
  // Once no transaction is open below them, delivered ids fall behind the horizon and are dropped
  // (xmin is cluster-wide: other test files' transactions can hold it for a moment).
  await waitFor('the cursor to settle', async () =>
    (await db.sql(`SELECT cardinality(delivered) AS n FROM auditlog.subscriber_cursor WHERE name = 'catch-up'`))[0].n === 0);
});

test('commit order, not id order: an entry committed late with a lower id is not skipped, even across a restart', async () => {
  const late = await collect({ name: 'late-commit', startFrom: 'now', tables: ['notes'] });
  await db.withClient(async (slow) => {
    await slow.query('BEGIN');
    await slow.query(`INSERT INTO notes (body) VALUES ('slow')`); // takes the lower id
    const [{ id: slowId }] = (await slow.query(`SELECT max(id)::int AS id FROM auditlog.log_entry`)).rows;
    for (let i = 0; i < 5; i++) await db.sql(`INSERT INTO notes (body) VALUES ('fast ${i}')`);
    await waitFor('the five fast entries', () => late.seen.length === 5);
    expect(Math.min(...late.ids())).toBeGreaterThan(slowId);

    // Restart while the slow transaction is still open: the stored cursor must remember it.
    await late.sub.close();
    const again = await collect({ name: 'late-commit', tables: ['notes'] });
    await new Promise((r) => setTimeout(r, 300));
    expect(again.seen).toHaveLength(0);

    await slow.query('COMMIT');
    await waitFor('the slow entry', () => again.seen.length === 1);
    expect(again.seen[0]).toMatchObject({ id: String(slowId), changes: { body: [null, 'slow'] } });
  });
});

test('behind a transaction left open, delivery continues until 10,000 entries pile up past it, then waits for it', async () => {
  const sub = await collect({ name: 'held-open', startFrom: 'now', tables: ['notes'], batchSize: 5000 });
  await db.withClient(async (idle) => {
    await idle.query('BEGIN');
    await idle.query(`INSERT INTO orders (total) VALUES (0)`); // holds the snapshot xmin down
    await db.sql(`INSERT INTO notes (body) SELECT 'bulk ' || i FROM generate_series(1, ${MAX_DELIVERED_ABOVE_HORIZON}) i`);
    await waitFor('the bulk entries', () => sub.seen.length === MAX_DELIVERED_ABOVE_HORIZON);
    await db.sql(`INSERT INTO notes (body) VALUES ('after the cap')`);
    await new Promise((r) => setTimeout(r, 500));
    expect(sub.seen).toHaveLength(MAX_DELIVERED_ABOVE_HORIZON);
    await idle.query('COMMIT');
  });
  await waitFor('the entry held back', () => sub.seen.length === MAX_DELIVERED_ABOVE_HORIZON + 1);
  await waitFor('the cursor to shrink', async () =>
    (await db.sql(`SELECT cardinality(delivered) AS n FROM auditlog.subscriber_cursor WHERE name = 'held-open'`))[0].n === 0);
});

test('a failing hook is retried with backoff and reported, without stalling another subscriber', async () => {
  const healthy = await collect({ startFrom: 'now', tables: ['users'] });
  let calls = 0;
  const delivered: LogEntry[] = [];
  const errors: AuditLogError[] = [];
  const flaky = await subscribe(
    { connectionString: db.url, name: 'flaky', startFrom: 'now', tables: ['users'], retry: { minDelayMs: 20, maxDelayMs: 50 }, log: () => undefined },
    async (entries) => {
      calls++;
      if (calls <= 3) throw new Error(`index down (${calls})`);
      delivered.push(...entries);
    });
  open.push(flaky);
  flaky.on('error', (err) => errors.push(err));

  await db.sql(`INSERT INTO users (email) VALUES ('retry@example.com')`);
  await waitFor('the healthy subscriber', () => healthy.seen.length === 1);
  await waitFor('the flaky hook to succeed', () => delivered.length === 1);
  expect(delivered[0]!.id).toBe(healthy.seen[0]!.id);
  expect(errors.map((e) => e.code)).toEqual(['HOOK_FAILED', 'HOOK_FAILED', 'HOOK_FAILED']);
  expect(errors[0]!.message).toMatch(/hook failed on entries \d+\.\.\d+ \(attempt 1\): index down \(1\); retrying in \d+ ms/);
  expect((errors[0]!.cause as Error).message).toBe('index down (1)');
});

test('after pg_terminate_backend on both connections it logs, reconnects and catches up', async () => {
  const lines: string[] = [];
  const sub = await collect({ name: 'terminated', startFrom: 'now', tables: ['orders'], log: (l) => lines.push(l), retry: { minDelayMs: 20, maxDelayMs: 200 } });
  await db.sql(`INSERT INTO orders (total) VALUES (1)`);
  await waitFor('the first entry', () => sub.seen.length === 1);
  const killed = await db.sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                               WHERE datname = current_database() AND application_name LIKE 'pg-auditlog terminated%'`);
  expect(killed).toHaveLength(2);
  await db.sql(`INSERT INTO orders (total) VALUES (2), (3)`);
  await waitFor('the entries written while disconnected', () => sub.seen.length === 3);
  await waitFor('the reconnect log line', () => lines.some((l) => /LISTEN connection restored/.test(l)));
  expect(lines.find((l) => /lost the LISTEN connection/.test(l))).toMatch(/subscriber "terminated": lost the LISTEN connection to PostgreSQL; reconnecting/);
});

test('two processes sharing a cursor name deliver every entry at least once between them, and say so in the log', async () => {
  const lines: string[] = [];
  const a = await collect({ name: 'shared', startFrom: 'now', tables: ['notes'], log: (l) => lines.push(`a: ${l}`) });
  const b = await collect({ name: 'shared', tables: ['notes'], log: (l) => lines.push(`b: ${l}`) });
  for (let i = 0; i < 5; i++) await db.sql(`INSERT INTO notes (body) VALUES ('shared ${i}')`);
  // Each adopts the position the other stored, so neither moves the cursor back nor skips.
  await waitFor('all five between them', () => new Set([...a.ids(), ...b.ids()]).size === 5);
  await waitFor('the warning', () => lines.some((l) => /another process stored this cursor meanwhile: two subscribers are using the name "shared"/.test(l)));
});

test('close() drains the hook in progress and stores its cursor', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let started = false;
  let finished = false;
  const sub = await subscribe({ connectionString: db.url, name: 'draining', startFrom: 'now', tables: ['notes'], log: () => undefined },
    async () => { started = true; await gate; finished = true; });
  await db.sql(`INSERT INTO notes (body) VALUES ('drain')`);
  await waitFor('the hook to start', () => started);
  const closing = sub.close();
  setTimeout(release, 100);
  await closing;
  expect(finished).toBe(true);
  const again = await collect({ name: 'draining', tables: ['notes'] });
  await new Promise((r) => setTimeout(r, 300));
  expect(again.seen).toHaveLength(0);
});

test('no handle keeps the process alive after close()', async () => {
  const script = `
    const { subscribe } = require('./src');
    (async () => {
      const sub = await subscribe({ connectionString: process.env.URL, name: 'exit-check' }, () => {});
      await new Promise((r) => setTimeout(r, 200));
      await sub.close();
      console.log('closed');
    })();`;
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', '-e', script], {
    cwd: path.join(__dirname, '..'), env: { ...process.env, URL: db.url }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, 15_000);
    child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  expect(out).toContain('closed');
  expect(code).toBe(0);
});

test('clear errors for bad options and a schema without event support', async () => {
  await expect(subscribe({ connectionString: db.url, tables: ['a.b.c'], batchSize: 0 } as SubscribeOptions, () => {}))
    .rejects.toMatchObject({ code: 'OPTIONS_INVALID', problems: ['tables: "a.b.c" is not a table name; write schema.table or table', 'batchSize must be a positive integer, got 0'] });
  await expect(subscribe({ connectionString: db.url, schema: 'nope' }, () => {}))
    .rejects.toMatchObject({ code: 'EVENTS_NOT_INSTALLED', message: expect.stringContaining('run auditlog install') });
});

test('installing events leaves status clean: the log_entry trigger is not a captured table', async () => {
  const report = await db.withClient((c) => status(c, { tables: { 'public.users': {}, 'public.orders': {}, 'public.notes': {} } }));
  expect(report.drift).toBe(false);
  expect(report.tables.map((t) => t.table)).toEqual(['public.notes', 'public.orders', 'public.users']);
});

test('a subscriber started with the listener port unreachable fails with a clear error', async () => {
  const url = new URL(db.url);
  url.port = '1';
  await expect(subscribe({ connectionString: url.toString() }, () => {}))
    .rejects.toMatchObject({ code: 'SUBSCRIBER_FAILED', message: expect.stringContaining('could not start') });
});
