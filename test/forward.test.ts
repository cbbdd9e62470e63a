// forwardToNats() against the real NATS server with JetStream: subjects, bodies, message ids,
// the stream's checks, deduplication, and the cursor moving only after the acknowledgement.
// The tests of this file run one after another; each uses its own stream, and all but the
// first bind only the subjects of their own table schema, so no two streams overlap.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Client } from 'pg';
import { forwardToNats } from '../src/forward';
import type { ForwardedBatch, Forwarder, LogEntry } from '../src/interfaces';
import { createTestDatabase, type TestDatabase, waitFor as waitForShared } from './helpers';
import { NATS_URL, openTestNats, type TestNats } from './nats-helpers';

/** This file's waits: longer (20_000 ms) than the shared default. */
const waitFor = (what: string, check: () => boolean | Promise<boolean>, ms = 20_000) => waitForShared(what, check, ms, 50);

let db: TestDatabase;
let nats: TestNats;
const schema = `fwd_${randomBytes(3).toString('hex')}`;
const forwarders: Forwarder[] = [];

beforeAll(async () => {
  nats = await openTestNats();
  db = await createTestDatabase('forward');
  await db.sql(`CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}."my.table" (id int PRIMARY KEY, v text);
    CREATE TABLE ${schema}."a b" (id int PRIMARY KEY, v text);
    CREATE TABLE ${schema}."naïve*>" (id int PRIMARY KEY, v text);
    CREATE TABLE ${schema}.big (id int PRIMARY KEY, v text);
    CREATE TABLE ${schema}.items (id int PRIMARY KEY, n int NOT NULL, writer int NOT NULL)`);
  await db.install({ includeAll: { schemas: [schema] } });
});

afterEach(async () => {
  while (forwarders.length > 0) await forwarders.pop()!.close();
  await nats.deleteStreams();
});

afterAll(async () => {
  await nats?.close();
  await db?.drop();
});

async function start(options: Partial<Parameters<typeof forwardToNats>[0]> & { stream: string }): Promise<Forwarder> {
  const f = await forwardToNats({ connectionString: db.url, servers: NATS_URL, log: () => undefined, ...options });
  forwarders.push(f);
  return f;
}

/** The entry as the forwarder's JSON body carries it. */
const asJson = (e: LogEntry) => JSON.parse(JSON.stringify(e)) as Record<string, unknown>;

test('creates a missing stream on auditlog.> and publishes each entry once, on its escaped subject, as JSON with its id as Nats-Msg-Id', async () => {
  const stream = nats.streamName('create');
  await db.sql(`INSERT INTO ${schema}."my.table" VALUES (1, 'one'); INSERT INTO ${schema}."a b" VALUES (1, 'x');
    INSERT INTO ${schema}."naïve*>" VALUES (1, 'y'); UPDATE ${schema}."my.table" SET v = 'uno'; DELETE FROM ${schema}."a b"`);
  const entries = await db.entries();
  expect(entries).toHaveLength(5);
  const lines: string[] = [];
  const f = await start({ stream, name: 'create', duplicateWindowMs: 90_000, log: (l) => lines.push(l) });
  await waitFor('5 messages', async () => (await nats.count(stream)) === 5);

  const info = await nats.jsm.streams.info(stream);
  expect(info.config.subjects).toEqual(['auditlog.>']);
  expect(info.config.duplicate_window).toBe(90_000 * 1_000_000);
  expect(lines.join('\n')).toContain(`created JetStream stream "${stream}" (subjects auditlog.>, duplicate window 90 s)`);

  const stored = await nats.read(stream);
  expect(stored.map((m) => m.subject)).toEqual([
    `auditlog.${schema}.my-2Etable.insert`,
    `auditlog.${schema}.a-20b.insert`,
    `auditlog.${schema}.na-C3-AFve-2A-3E.insert`,
    `auditlog.${schema}.my-2Etable.update`,
    `auditlog.${schema}.a-20b.delete`,
  ]);
  expect(stored.map((m) => m.body)).toEqual(entries.map(asJson));
  expect(stored.map((m) => m.msgId)).toEqual(entries.map((e) => `${f.source}:${e.id}`));
  expect(f.source).toMatch(new RegExp(`^\\d+\\.\\d+\\.auditlog$`));
  await db.sql(`DELETE FROM auditlog.log_entry`);
});

test('a restarted forwarder continues from its cursor; a new name republishes everything and JetStream drops every copy', async () => {
  const stream = nats.streamName('dedup');
  await nats.createStream({ name: stream, subjects: [`auditlog.${schema}.>`], duplicate_window: 120e9 });
  await db.sql(`INSERT INTO ${schema}."my.table" SELECT g, 'v' FROM generate_series(10, 39) g`);
  const tables = [`${schema}."my.table"`];

  let f = await start({ stream, name: 'first', tables });
  await waitFor('30 messages', async () => (await nats.count(stream)) === 30);
  await forwarders.pop()!.close();
  await db.sql(`UPDATE ${schema}."my.table" SET v = 'w' WHERE id BETWEEN 10 AND 14`);
  const batches: ForwardedBatch[] = [];
  f = await start({ stream, name: 'first', tables });
  f.on('forwarded', (b) => batches.push(b));
  await waitFor('35 messages', async () => (await nats.count(stream)) === 35);
  await new Promise((r) => setTimeout(r, 300));
  expect(batches.reduce((n, b) => n + b.entries, 0)).toBe(5); // only what was new
  expect(batches.reduce((n, b) => n + b.duplicates, 0)).toBe(0);

  const again: ForwardedBatch[] = [];
  const second = await start({ stream, name: 'second', tables });
  second.on('forwarded', (b) => again.push(b));
  await waitFor('the second forwarder to go through the log', () => again.reduce((n, b) => n + b.entries, 0) === 35);
  expect(again.reduce((n, b) => n + b.duplicates, 0)).toBe(35);
  expect(await nats.count(stream)).toBe(35);
  const ids = (await nats.read(stream)).map((m) => m.entryId);
  expect(new Set(ids).size).toBe(35);
});

test('two databases forwarding into one stream keep each other\'s entries: the message id names the database', async () => {
  const stream = nats.streamName('twodb');
  await nats.createStream({ name: stream, subjects: [`auditlog.${schema}.>`] });
  const other = await createTestDatabase('forward_other');
  try {
    await other.sql(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}."a b" (id int PRIMARY KEY, v text)`);
    await other.install({ includeAll: { schemas: [schema] } });
    for (const d of [db, other]) await d.sql(`SELECT setval(pg_get_serial_sequence('auditlog.log_entry', 'id'), 1000)`);
    await db.sql(`INSERT INTO ${schema}."a b" SELECT g, 'db1' FROM generate_series(100, 109) g`);
    await other.sql(`INSERT INTO ${schema}."a b" SELECT g, 'db2' FROM generate_series(100, 109) g`);
    // The same entry ids in both logs.
    const newIds = async (d: TestDatabase) => (await d.entries(`id > 1000`)).map((e) => e.id);
    expect(await newIds(db)).toEqual(await newIds(other));
    const a = await start({ stream, name: 'twodb', tables: [`${schema}."a b"`] });
    const b = await forwardToNats({ connectionString: other.url, servers: NATS_URL, stream, name: 'twodb', tables: [`${schema}."a b"`], log: () => undefined });
    forwarders.push(b);
    expect(a.source).not.toBe(b.source);
    await waitFor('20 messages', async () => (await nats.count(stream)) === 20);
    await new Promise((r) => setTimeout(r, 300));
    const stored = await nats.read(stream);
    expect(stored).toHaveLength(20);
    expect(stored.filter((m) => (m.body.changes as any).v[1] === 'db2')).toHaveLength(10);
  } finally {
    while (forwarders.length > 0) await forwarders.pop()!.close();
    await other.drop();
  }
});

test('refuses a stream whose subjects leave some entries out, naming the subjects and the fix', async () => {
  const stream = nats.streamName('narrow');
  await nats.createStream({ name: stream, subjects: [`auditlog.${schema}.a-20b.*`] });
  const err = await forwardToNats({ connectionString: db.url, servers: NATS_URL, stream, log: () => undefined }).catch((e) => e);
  expect(err).toMatchObject({ code: 'STREAM_INVALID' });
  expect(err.message).toContain(`its subjects (auditlog.${schema}.a-20b.*) do not cover auditlog.*.*.*`);
  expect(err.message).toContain(`--subjects 'auditlog.>'`);
  // A forwarder of that one table needs only its subjects: accepted.
  await start({ stream, tables: [`${schema}."a b"`] });
  const other = await forwardToNats({ connectionString: db.url, servers: NATS_URL, stream, tables: [`${schema}.big`], log: () => undefined }).catch((e) => e);
  expect(other.message).toContain(`do not cover auditlog.${schema}.big.*`);
});

test('an unreachable server, a bad stream name and a missing connection string fail clearly', async () => {
  await expect(forwardToNats({ connectionString: db.url, servers: 'nats://127.0.0.1:1', stream: 'X', log: () => undefined }))
    .rejects.toMatchObject({ code: 'BROKER_UNREACHABLE', message: expect.stringContaining('could not connect to NATS at nats://127.0.0.1:1') });
  await expect(forwardToNats({ connectionString: '', servers: [], stream: 'a.b' }))
    .rejects.toMatchObject({ code: 'OPTIONS_INVALID', problems: [expect.stringContaining('connectionString'), expect.stringContaining('servers'), expect.stringContaining('"a.b"')] });
});

test('the cursor moves only after JetStream acknowledges; a rejected entry holds back later entries of its object, not others', async () => {
  // JetStream rejects messages over max_msg_size: entries of object 1 past its big update are
  // refused or held back, object 2 flows, and the cursor stays until every entry is stored.
  const stream = nats.streamName('acked');
  await nats.createStream({ name: stream, subjects: [`auditlog.${schema}.>`], max_msg_size: 3000 });
  await db.sql(`DELETE FROM auditlog.log_entry`);
  await db.withClient(async (c) => {
    await c.query('BEGIN');
    await c.query(`INSERT INTO ${schema}.big VALUES (1, 'a'), (2, 'a')`);
    await c.query(`UPDATE ${schema}.big SET v = repeat('x', 5000) WHERE id = 1`); // too big
    await c.query(`UPDATE ${schema}.big SET v = 'b' WHERE id = 2`);
    await c.query(`UPDATE ${schema}.big SET v = 'c' WHERE id = 1`); // old value too big as well
    await c.query(`UPDATE ${schema}.big SET v = 'd' WHERE id = 1`); // small: must still wait
    await c.query(`UPDATE ${schema}.big SET v = 'c' WHERE id = 2`);
    await c.query('COMMIT');
  });
  const entries = await db.entries();
  expect(entries).toHaveLength(7);
  const errors: string[] = [];
  const f = await start({ stream, name: 'acked', tables: [`${schema}.big`], retry: { minDelayMs: 50, maxDelayMs: 200 } });
  f.on('error', (e) => errors.push(e.message));
  await waitFor('two failed attempts', () => errors.length >= 2);
  const cursor = async () => (await db.sql(`SELECT last_id::text, delivered::text[] FROM auditlog.subscriber_cursor WHERE name = 'acked'`))[0];
  expect(await cursor()).toEqual({ last_id: '0', delivered: [] });
  expect(errors[0]).toMatch(/publishing entry #\d+ to "auditlog\.fwd_\w+\.big\.update" in stream .* failed/);
  const held = await nats.read(stream);
  const pk = (m: { body: Record<string, unknown> }) => m.body.object_pk;
  expect(held.filter((m) => pk(m) === '1').map((m) => m.entryId)).toEqual([entries[0]!.id]);
  expect(held.filter((m) => pk(m) === '2').map((m) => m.entryId)).toEqual(entries.filter((e) => e.object_pk === '2').map((e) => e.id));

  await nats.jsm.streams.update(stream, { max_msg_size: -1 });
  await waitFor('all 7 entries', async () => (await nats.count(stream)) === 7);
  await waitFor('the cursor to move', async () => (await cursor()).last_id === entries[6]!.id);
  const stored = await nats.read(stream);
  expect(stored.filter((m) => pk(m) === '1').map((m) => m.entryId)).toEqual(entries.filter((e) => e.object_pk === '1').map((e) => e.id));
  expect(new Set(stored.map((m) => m.entryId)).size).toBe(7);
});

/** `auditlog forward` as users run it: the built CLI (dist/), in a folder without a config file. */
function cliForward(args: string[]) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'dist/cli/main.js'), 'forward', '--nats', NATS_URL, ...args], {
    cwd: __dirname, env: { ...process.env, DATABASE_URL: db.url },
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { out.stdout += d; });
  child.stderr.on('data', (d) => { out.stderr += d; });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, out, exited };
}

test('auditlog forward --help, a missing --nats and an unreachable server', async () => {
  const help = cliForward(['--help']);
  expect((await help.exited).code).toBe(0);
  expect(help.out.stdout).toContain('Usage: auditlog forward --nats URL [options]');
  const none = spawn(process.execPath, [path.join(__dirname, '..', 'dist/cli/main.js'), 'forward'], { cwd: __dirname, env: { ...process.env, DATABASE_URL: db.url } });
  let noneErr = '';
  none.stderr.on('data', (d) => { noneErr += d; });
  expect(await new Promise((r) => none.on('exit', r))).toBe(2);
  expect(noneErr).toContain('--nats URL is required');
  const down = spawn(process.execPath, [path.join(__dirname, '..', 'dist/cli/main.js'), 'forward', '--nats', 'nats://127.0.0.1:1'],
    { cwd: __dirname, env: { ...process.env, DATABASE_URL: db.url } });
  let downErr = '';
  down.stderr.on('data', (d) => { downErr += d; });
  expect(await new Promise((r) => down.on('exit', r))).toBe(1);
  expect(downErr).toContain('could not connect to NATS at nats://127.0.0.1:1');
});

test('8 writers, the forwarder killed with SIGKILL three times mid-stream: the stream holds every entry once, in commit order per object', async () => {
  const stream = nats.streamName('crash');
  await nats.createStream({ name: stream, subjects: [`auditlog.${schema}.>`], duplicate_window: 600e9 });
  await db.sql(`DELETE FROM auditlog.log_entry`);
  const table = `${schema}.items`;

  // Writers: inserts of new objects, updates of random ones (one or three per transaction).
  let writing = true;
  let nextId = 0;
  const writers = Array.from({ length: 8 }, async (_, w) => {
    const c = new Client(db.url);
    await c.connect();
    try {
      while (writing) {
        const known = nextId;
        if (known < 20 || Math.random() < 0.3) {
          await c.query(`INSERT INTO ${table} VALUES ($1, 0, $2)`, [nextId++, w]);
        } else {
          const ids = Array.from({ length: Math.random() < 0.3 ? 3 : 1 }, () => Math.floor(Math.random() * known));
          await c.query(`UPDATE ${table} SET n = n + 1, writer = $2 WHERE id = ANY($1)`, [ids, w]);
        }
        await new Promise((r) => setTimeout(r, Math.random() * 4));
      }
    } finally {
      await c.end();
    }
  });

  const runs: ReturnType<typeof cliForward>[] = [];
  const run = () => {
    const r = cliForward(['--stream', stream, '--name', 'crash', '--table', table, '--batch-size', '40']);
    runs.push(r);
    return r;
  };
  try {
    let current = run();
    for (let kill = 1; kill <= 3; kill++) {
      const before = await nats.count(stream);
      await waitFor(`run ${kill} to publish`, async () => (await nats.count(stream)) > before + 100);
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      current.child.kill('SIGKILL');
      expect((await current.exited).signal).toBe('SIGKILL');
      current = run();
    }
    await new Promise((r) => setTimeout(r, 1500));
    writing = false;
    await Promise.all(writers);
    const entries = await db.entries();
    await waitFor(`all ${entries.length} entries in the stream`, async () => (await nats.count(stream)) >= entries.length, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    current.child.kill('SIGINT');
    expect((await current.exited).code).toBe(0);
    expect(current.out.stdout).toContain('stopped;');

    const stored = await nats.read(stream);
    expect(stored.length).toBe(entries.length);
    expect(stored.every((m) => m.body.id === m.entryId && m.msgId?.endsWith(`:${m.entryId}`))).toBe(true);
    expect([...stored.map((m) => m.entryId)].sort()).toEqual(entries.map((e) => e.id).sort()); // each once
    const perObject = (list: Array<{ pk: unknown; id: string }>) => {
      const map = new Map<unknown, string[]>();
      for (const x of list) map.set(x.pk, [...(map.get(x.pk) ?? []), x.id]);
      return map;
    };
    // Entries of one object commit in id order (row locks serialise them): the stream keeps it.
    expect(perObject(stored.map((m) => ({ pk: m.body.object_pk, id: m.entryId }))))
      .toEqual(perObject(entries.map((e) => ({ pk: e.object_pk, id: e.id }))));
    expect(entries.length).toBeGreaterThan(400);
  } finally {
    writing = false;
    await Promise.allSettled(writers);
    for (const r of runs) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  }
}, 90_000);
