// `auditlog history`, `flush` and `report`, run as a subprocess the way users run them.
import { execFile, execFileSync } from 'node:child_process';
import { statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { withAuditSession } from '../src';
import { createTestDatabase, type TestDatabase } from './helpers';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

let db: TestDatabase;

/** Newest modification time of any file under dir. */
function newest(dir: string): number {
  return Math.max(...readdirSync(dir, { withFileTypes: true }).map((d) =>
    d.isDirectory() ? newest(path.join(dir, d.name)) : statSync(path.join(dir, d.name)).mtimeMs));
}

interface Run { code: number; out: string; err: string }

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile('node', [CLI, ...args], {
      cwd: ROOT, env: { ...process.env, DATABASE_URL: db.url, ...env },
    }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr });
    });
    child.stdin?.end(); // stdin is a pipe, not a terminal
  });
}

beforeAll(async () => {
  // The CLI runs from dist: rebuild it when the sources are newer (npm test builds first anyway).
  let built = 0;
  try { built = statSync(CLI).mtimeMs; } catch { /* not built yet */ }
  if (built < Math.max(newest(path.join(ROOT, 'src')), newest(path.join(ROOT, 'sql')))) {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  }
  db = await createTestDatabase('history_cli');
  await db.sql(`
    CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, ssn text);
    CREATE TABLE order_items (order_id int, line int, qty int, PRIMARY KEY (order_id, line));
    CREATE TABLE shards (shard bigint, n int, PRIMARY KEY (shard, n));
  `);
  await db.install({
    tables: { 'public.users': { mask: ['ssn'], mapping: { email: 'E-mail address' } }, 'public.order_items': {}, 'public.shards': {} },
  });
}, 120_000);

afterAll(() => db.drop());

beforeEach(async () => {
  await db.sql('TRUNCATE users RESTART IDENTITY; TRUNCATE order_items; TRUNCATE shards');
  await db.sql('TRUNCATE auditlog.log_entry');
});

/** ISO 8601 text with microseconds of an entry's ts, plus `deltaMicros`. */
async function tsOf(id: string, deltaMicros = 0): Promise<string> {
  const [{ t }] = await db.sql(
    `SELECT to_char((ts + make_interval(secs => $2::float8 / 1000000)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
     FROM auditlog.log_entry WHERE id = $1`, [id, deltaMicros]);
  return t as string;
}

test('history prints a compact diff per entry, newest first, with display names and masks', async () => {
  await withAuditSession(db.pool, { actor: 'alice', cid: 'req-1' }, async (c) => {
    await c.query(`INSERT INTO users (email, ssn) VALUES ('a@x', 'secret')`);
  });
  await db.sql(`UPDATE users SET email = 'b@x', ssn = 'other' WHERE id = 1`);
  const r = await cli(['history', 'users', '1']);
  expect(r).toMatchObject({ code: 0, err: '' });
  const lines = r.out.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^#\d+ {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}UPDATE {2}by db user \S+$/);
  // Fields in the table's column order (id, email, ssn), not jsonb's (shorter names first).
  expect(lines.slice(1, 3)).toEqual(['    E-mail address: "a@x" → "b@x"', '    ssn: changed (masked)']);
  expect(lines[3]).toMatch(/^#\d+ .* INSERT {2}by alice {2}cid req-1$/);
  expect(r.out).not.toMatch(/secret|other/);
});

test('history --json prints the entries newest first; --at the state then, or null', async () => {
  await db.sql(`INSERT INTO order_items VALUES (7, 2, 1)`);
  await db.sql(`UPDATE order_items SET qty = 5 WHERE order_id = 7 AND line = 2`);
  await db.sql(`DELETE FROM order_items`);
  const json = await cli(['history', 'order_items', '[7,2]', '--json']);
  expect(json.code).toBe(0);
  const entries = JSON.parse(json.out) as Array<{ id: string; action: string; object_pk: string }>;
  expect(entries.map((e) => [e.action, e.object_pk])).toEqual([['delete', '[7, 2]'], ['update', '[7, 2]'], ['insert', '[7, 2]']]);

  const [del, upd, ins] = entries;
  const at = async (when: string) => {
    const r = await cli(['history', 'public.order_items', '[7, 2]', '--at', when]);
    expect(r).toMatchObject({ code: 0, err: '' });
    return JSON.parse(r.out) as unknown;
  };
  expect(await at(await tsOf(ins!.id, -1))).toBeNull();
  expect(await at(await tsOf(ins!.id))).toEqual({ order_id: 7, line: 2, qty: 1 });
  expect(await at(await tsOf(upd!.id))).toEqual({ order_id: 7, line: 2, qty: 5 });
  expect(await at(await tsOf(del!.id))).toBeNull();
  expect(await at('2000-01-01')).toBeNull();

  // Integers beyond 2^53 in a composite key keep every digit.
  await db.sql('INSERT INTO shards VALUES (9007199254740993, 2), (9007199254740992, 2)');
  const big = await cli(['history', 'shards', '[9007199254740993, 2]', '--json']);
  expect((JSON.parse(big.out) as Array<{ object_pk: string }>).map((e) => e.object_pk)).toEqual(['[9007199254740993, 2]']);
});

test('history refuses unclear times and keys, and says what to write instead', async () => {
  const r = await cli(['history', 'users', '1', '--at', 'yesterday']);
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/--at|at "yesterday" is not an ISO 8601 date/);
  const k = await cli(['history', 'order_items', '[7, 2']);
  expect(k.code).toBe(2);
  expect(k.err).toMatch(/not a JSON array of values; write it like '\[7, 2\]'/);
  const missing = await cli(['history', 'users']);
  expect(missing.code).toBe(2);
  expect((await cli(['history', 'users', '42'])).out.trim()).toBe('no entries for users 42');
  const noSchema = await cli(['history', 'users', '42', '--schema', 'elsewhere']);
  expect(noSchema).toMatchObject({ code: 1, err: expect.stringMatching(/audit schema "elsewhere" has no log: run auditlog install/) });
});

test('flush asks unless --yes, refuses without a terminal, rejects non-ISO dates, prints the count', async () => {
  await db.sql(`INSERT INTO users (email) SELECT 'u' || i FROM generate_series(1, 12) i`);
  await db.sql(`UPDATE auditlog.log_entry SET ts = '2020-01-01T00:00:00Z' WHERE object_pk::int <= 10`);

  const noTty = await cli(['flush', '--before-date', '2021-01-01']);
  expect(noTty.code).toBe(2);
  expect(noTty.err).toMatch(/refusing without --yes/);
  const badDate = await cli(['flush', '--before-date', '01/01/2021', '--yes']);
  expect(badDate.code).toBe(2);
  expect(badDate.err).toMatch(/not an ISO 8601 date/);
  expect(await db.entries()).toHaveLength(12);

  const ok = await cli(['flush', '--before-date', '2021-01-01', '--table', 'users', '--batch-size', '3', '--yes']);
  expect(ok).toMatchObject({ code: 0, out: 'removed 10 log entries\n' });
  expect((await db.entries()).map((e) => e.action)).toEqual(['insert', 'insert', 'flush']);
});

test('report counts by table, action and actor, as text and JSON', async () => {
  await withAuditSession(db.pool, { actor: 'alice' }, async (c) => {
    await c.query(`INSERT INTO users (email) VALUES ('a@x'), ('b@x')`);
  });
  await db.sql(`INSERT INTO order_items VALUES (1, 1, 1)`);
  const json = await cli(['report', '--json', '--since', '2000-01-01']);
  expect(json.code).toBe(0);
  expect(JSON.parse(json.out)).toMatchObject({
    total: 3,
    byTable: [{ key: 'public.users', count: 2 }, { key: 'public.order_items', count: 1 }],
    byAction: [{ key: 'insert', count: 3 }],
    byActor: [{ key: 'alice', count: 2 }, { key: null, count: 1 }],
  });
  const text = await cli(['report']);
  expect(text.code).toBe(0);
  const [head, ...rest] = text.out.trimEnd().split('\n');
  expect(head).toMatch(/^3 log entries from \S+Z to \S+Z$/);
  expect(rest).toEqual([
    'by table:', '  public.users        2', '  public.order_items  1',
    'by action:', '  insert  3',
    'by actor:', '  alice       2', '  (no actor)  1',
  ]);
  const bad = await cli(['report', '--until', '2021-02-30']);
  expect(bad.code).toBe(2);
  expect(bad.err).toMatch(/not a calendar date/);
});

test('each command has --help naming its options', async () => {
  for (const [command, option] of [['history', '--at'], ['flush', '--before-date'], ['report', '--since']] as const) {
    const r = await cli([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`Usage: auditlog ${command}`);
    expect(r.out).toContain(option);
    expect(r.out).toContain('--database-url');
  }
  expect((await cli(['--help'])).out).toMatch(/history .*\n.*baseline .*\n.*flush .*\n.*report /);
});
