// The CLI never hangs and always says what is wrong: connect timeout, a bad URL, an unknown
// table, a dropped audited table, every config problem at once, a reader that stops early.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { ensureBuilt, runCli } from './cli-helpers';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;
let dir: string;

function writeConfig(config: unknown): void {
  writeFileSync(path.join(dir, 'auditlog.config.json'), JSON.stringify(config));
}
const cli = (args: string[], env: Record<string, string | undefined> = {}) => runCli(args, { DATABASE_URL: db.url, ...env }, { cwd: dir });

beforeAll(async () => {
  ensureBuilt();
  db = await createTestDatabase('cli_edges');
  dir = mkdtempSync('/tmp/auditlog-cli-edges-');
  await db.sql(`CREATE TABLE kept (id int PRIMARY KEY, v text); CREATE TABLE doomed (id int PRIMARY KEY);
                CREATE TABLE plain (id int PRIMARY KEY)`);
  writeConfig({ tables: { 'public.kept': {}, 'public.doomed': {} } });
  expect((await cli(['install'])).code).toBe(0);
}, 120_000);

afterAll(() => db.drop());

describe('a server that accepts connections and never answers', () => {
  let server: Server;
  let port: number;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    server = createServer((s) => { sockets.push(s); }); // accepts, never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  test.each([
    ['--connect-timeout', ['--connect-timeout', '1'], {}],
    ['PGCONNECT_TIMEOUT', [], { PGCONNECT_TIMEOUT: '1' }],
  ])('times out after %s seconds and names the host and port', async (_label, flags, env) => {
    const started = Date.now();
    const r = await cli(['history', 'kept', '1', '--database-url', `postgres://u@127.0.0.1:${port}/db`, ...flags], env);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`no answer from the PostgreSQL server at 127\\.0\\.0\\.1:${port} within 1 s`));
  });
});

test('a database URL that is not a PostgreSQL connection string is a usage error (exit 2)', async () => {
  const r = await cli(['history', 'kept', '1', '--database-url', 'not a url']);
  expect(r).toMatchObject({ code: 2, err: expect.stringMatching(/--database-url "not a url" is not a PostgreSQL connection string; write it as postgres:\/\//) });
  const env = await cli(['status'], { DATABASE_URL: 'mysql://x@y/z' });
  expect(env).toMatchObject({ code: 2, err: expect.stringMatching(/DATABASE_URL "mysql:\/\/x@y\/z" is not a PostgreSQL connection string/) });
  const t = await cli(['history', 'kept', '1', '--connect-timeout', 'soon']);
  expect(t).toMatchObject({ code: 2, err: expect.stringMatching(/--connect-timeout must be a number of seconds/) });
});

test('history of a table that does not exist or is not audited exits 1; an audited object without entries is not an error', async () => {
  expect(await cli(['history', 'nosuch', '1'])).toMatchObject({ code: 1, err: expect.stringMatching(/table public\.nosuch does not exist/) });
  expect(await cli(['history', 'plain', '1', '--json'])).toMatchObject({ code: 1, err: expect.stringMatching(/public\.plain is not audited/) });
  expect(await cli(['history', 'nosuch', '1', '--at', '2026-01-01'])).toMatchObject({ code: 1, err: expect.stringMatching(/does not exist/) });
  expect(await cli(['history', 'kept', '42'])).toMatchObject({ code: 0, out: 'no entries for kept 42\n' });
});

test('a config with an unknown key and bad column names reports every problem at once', async () => {
  writeConfig({ tabels: {}, tables: { 'public.kept': { mask: ['nope'], exclude: ['also_nope'] } } });
  for (const command of [['status'], ['install', '--dry-run'], ['install']]) {
    const r = await cli(command);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown key "tabels"/);
    expect(r.err).toMatch(/mask: column "nope" does not exist/);
    expect(r.err).toMatch(/exclude: column "also_nope" does not exist/);
  }
  writeConfig({ tables: { 'public.kept': {}, 'public.doomed': {} } });
});

test('a dropped audited table: status says MISSING (exit 1); install --prune removes its function and tracking row', async () => {
  const [{ fn }] = await db.sql(`SELECT function_name AS fn FROM auditlog.tracked_table WHERE table_name = 'doomed'`);
  await db.sql('DROP TABLE doomed');
  const status = await cli(['status']);
  expect(status.code).toBe(1);
  expect(status.out).toMatch(/public\.doomed\s+MISSING\s+table does not exist \(dropped\?\)/);
  expect(status.out).toMatch(/public\.kept\s+INSTALLED/);

  writeConfig({ tables: { 'public.kept': {} } });
  expect((await cli(['status'])).out).toMatch(/public\.doomed\s+ORPHANED/);
  const pruned = await cli(['install', '--prune', '--yes']);
  expect(pruned).toMatchObject({ code: 0, out: expect.stringMatching(/removed capture from public\.doomed/) });
  expect(await db.sql(`SELECT 1 FROM auditlog.tracked_table WHERE table_name = 'doomed'`)).toEqual([]);
  expect(await db.sql(`SELECT 1 FROM pg_proc WHERE proname = $1`, [fn])).toEqual([]);
  expect(await cli(['status'])).toMatchObject({ code: 0 });
  writeConfig({ tables: { 'public.kept': {}, 'public.doomed': {} } });
});

test('history piped into a reader that stops early exits quietly', async () => {
  await db.sql(`INSERT INTO kept VALUES (1, 'a')`);
  for (let i = 0; i < 300; i++) await db.sql(`UPDATE kept SET v = $1 WHERE id = 1`, [`value ${i} ${'x'.repeat(500)}`]);
  const r = await runCli(['history', 'kept', '1', '--json'], { DATABASE_URL: db.url },
    { cwd: dir, shell: 'node "$1" "${@:2}" | head -c 300 > /dev/null; exit "${PIPESTATUS[0]}"' });
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
}, 60_000);
