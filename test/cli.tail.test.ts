// `auditlog tail` as users run it: a subprocess, entries on stdout, stopped with Ctrl-C.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createTestDatabase, type TestDatabase, waitFor as waitForShared } from './helpers';

/** This file's waits: longer (15_000 ms) than the shared default. */
const waitFor = (what: string, check: () => boolean | Promise<boolean>, ms = 15_000) => waitForShared(what, check, ms);

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('cli_tail');
  await db.sql(`CREATE TABLE users (id serial PRIMARY KEY, email text); CREATE TABLE orders (id serial PRIMARY KEY, total int)`);
  await db.install({ tables: { 'public.users': {}, 'public.orders': {} } });
});

afterAll(() => db.drop());

const ROOT = path.join(__dirname, '..');

/** Runs the CLI from source, in a folder without a config file. */
function cli(args: string[]) {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: __dirname, env: { ...process.env, DATABASE_URL: db.url },
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { out.stdout += d; });
  child.stderr.on('data', (d) => { out.stderr += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out, exited };
}

async function stop(run: { child: ChildProcessWithoutNullStreams; exited: Promise<number | null> }) {
  run.child.kill('SIGINT');
  return run.exited;
}

test('tail --json prints each committed entry of the chosen table as one JSON line; Ctrl-C exits 0', async () => {
  const run = cli(['tail', '--table', 'users', '--json']);
  await waitFor('tail to start', () => run.out.stderr.includes('Ctrl-C to stop'));
  await db.sql(`INSERT INTO orders (total) VALUES (5)`);
  await db.sql(`INSERT INTO users (email) VALUES ('tail@example.com')`);
  await waitFor('one line', () => run.out.stdout.includes('\n'));
  await new Promise((r) => setTimeout(r, 200));
  expect(await stop(run)).toBe(0);
  const lines = run.out.stdout.trim().split('\n').map((l) => JSON.parse(l));
  expect(lines).toEqual([expect.objectContaining({
    table_schema: 'public', table_name: 'users', action: 'insert', changes: { id: [null, 1], email: [null, 'tail@example.com'] },
  })]);
});

test('tail --actor prints a summary line per entry of that actor', async () => {
  const run = cli(['tail', '--actor', 'alice']);
  await waitFor('tail to start', () => run.out.stderr.includes('Ctrl-C to stop'));
  expect(run.out.stderr).toContain('following "auditlog".log_entry (actor alice)');
  await db.withClient(async (c) => {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('auditlog.actor', 'alice', true)`);
    await c.query(`UPDATE orders SET total = 6`);
    await c.query('COMMIT');
    await c.query(`UPDATE orders SET total = 7`);
  });
  await waitFor('one line', () => run.out.stdout.includes('\n'));
  await new Promise((r) => setTimeout(r, 200));
  expect(await stop(run)).toBe(0);
  expect(run.out.stdout.trim().split('\n')).toEqual([
    expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z  #\d+  update  public\.orders  pk=1  actor=alice  \{"total":\[5,6\]\}$/),
  ]);
});

test('tail with a malformed --table exits 2 naming it; --help exits 0', async () => {
  const bad = cli(['tail', '--table', 'a.b.c']);
  expect(await bad.exited).toBe(2);
  expect(bad.out.stderr).toContain('"a.b.c" is not a table name');
  const help = cli(['tail', '--help']);
  expect(await help.exited).toBe(0);
  expect(help.out.stdout).toContain('Usage: auditlog tail');
});
