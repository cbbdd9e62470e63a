// The `auditlog` command, run as a subprocess the way users run it (the built dist/ bin).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from './helpers';

const BIN = path.join(__dirname, '..', 'dist', 'cli', 'main.js');

interface Run { code: number; stdout: string; stderr: string }

function auditlog(args: string[], opts: { cwd: string; env?: Record<string, string | undefined> }): Promise<Run> {
  return new Promise((resolve) => {
    const env = { ...process.env, DATABASE_URL: undefined, ...opts.env };
    const child = execFile('node', [BIN, ...args], { cwd: opts.cwd, env: env as NodeJS.ProcessEnv }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    child.stdin?.end(); // no terminal: confirmation prompts must refuse, not hang
  });
}

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" (npm test does it first)`);
  db = await createTestDatabase('cli');
  dir = mkdtempSync(path.join(os.tmpdir(), 'auditlog-cli-'));
  await db.sql('CREATE TABLE users (id int PRIMARY KEY, email text, ssn text, updated_at timestamptz)');
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await db.drop();
});

test('every command has --help, and no command prints usage with exit 2', async () => {
  for (const cmd of ['init', 'install', 'status', 'uninstall']) {
    const r = await auditlog([cmd, '--help'], { cwd: dir });
    expect(r).toMatchObject({ code: 0, stdout: expect.stringContaining(`Usage: auditlog ${cmd}`) });
  }
  expect(await auditlog(['--help'], { cwd: dir })).toMatchObject({ code: 0, stdout: expect.stringMatching(/Commands:[\s\S]*install/) });
  expect((await auditlog([], { cwd: dir })).code).toBe(2);
  expect(await auditlog(['instal'], { cwd: dir })).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "instal"') });
  expect(await auditlog(['install', '--dryrun'], { cwd: dir })).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--dryrun'") });
});

test('init writes a commented config and refuses to overwrite it', async () => {
  const r = await auditlog(['init'], { cwd: dir });
  expect(r.code).toBe(0);
  const text = readFileSync(path.join(dir, 'auditlog.config.ts'), 'utf8');
  expect(text).toContain("import { defineConfig } from 'pg-auditlog'");
  expect(text).toContain('excludeFields');
  expect(await auditlog(['init'], { cwd: dir })).toMatchObject({ code: 1, stderr: expect.stringContaining('already exists') });
  rmSync(path.join(dir, 'auditlog.config.ts'));
});

test('without a config or a database URL, the error says what to do', async () => {
  expect(await auditlog(['status'], { cwd: dir })).toMatchObject({ code: 2, stderr: expect.stringContaining('run "auditlog init"') });
  writeFileSync(path.join(dir, 'auditlog.config.json'), JSON.stringify({ tables: { 'public.users': {} } }));
  expect(await auditlog(['status'], { cwd: dir })).toMatchObject({ code: 2, stderr: expect.stringContaining('--database-url') });
});

test('install --dry-run prints reviewable SQL and changes nothing; install, status, exit codes', async () => {
  writeFileSync(path.join(dir, 'auditlog.config.json'), JSON.stringify({
    excludeFields: ['updated_at'], tables: { 'public.users': { mask: ['ssn'] } },
  }));
  const dry = await auditlog(['install', '--dry-run', '--database-url', db.url], { cwd: dir });
  expect(dry.code).toBe(0);
  expect(dry.stdout).toContain('CREATE TABLE log_entry');
  expect(dry.stdout).toContain('CREATE TRIGGER "auditlog_update_');
  expect(dry.stdout).toContain('REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows');
  expect(await db.sql(`SELECT to_regnamespace('auditlog') AS s`)).toEqual([{ s: null }]);

  const before = await auditlog(['status'], { cwd: dir, env: { DATABASE_URL: db.url } });
  expect(before).toMatchObject({ code: 1, stdout: expect.stringMatching(/public\.users\s+MISSING/) });

  const inst = await auditlog(['install'], { cwd: dir, env: { DATABASE_URL: db.url } });
  expect(inst).toMatchObject({ code: 0, stdout: expect.stringContaining('installed capture on public.users') });

  const after = await auditlog(['status', '--json'], { cwd: dir, env: { DATABASE_URL: db.url } });
  expect(after.code).toBe(0);
  expect(JSON.parse(after.stdout)).toMatchObject({ drift: false, tables: [{ table: 'public.users', state: 'installed' }] });

  await db.sql(`INSERT INTO users VALUES (1, 'a@example.com', '123', now())`);
  expect((await db.entries())[0]!.changes).toEqual({ id: [null, 1], email: [null, 'a@example.com'], ssn: [null, '[masked]'] });
});

test('a TypeScript config is loaded too, and --config picks the file', async () => {
  writeFileSync(path.join(dir, 'custom.config.ts'), `
    const config: { tables: Record<string, object> } = { tables: { 'public.users': { mask: ['ssn'] } } };
    export default config;`);
  const r = await auditlog(['status', '--config', 'custom.config.ts', '--database-url', db.url], { cwd: dir });
  expect(r.stdout).toMatch(/public\.users\s+OUTDATED/); // excludeFields differs from the installed JSON config
  expect(r.code).toBe(1);
});

test('a config error names the table and field, exit 2, nothing written', async () => {
  writeFileSync(path.join(dir, 'bad.config.json'), JSON.stringify({ tables: { 'public.users': { exclude: ['emial'] } } }));
  const r = await auditlog(['install', '--config', 'bad.config.json', '--database-url', db.url], { cwd: dir });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('tables["public.users"].exclude: column "emial" does not exist in public.users');
});

test('destructive commands refuse without a terminal unless --yes', async () => {
  const env = { DATABASE_URL: db.url };
  const refused = await auditlog(['uninstall'], { cwd: dir, env });
  expect(refused).toMatchObject({ code: 2, stderr: expect.stringContaining('refusing without --yes') });
  expect((await auditlog(['install', '--prune'], { cwd: dir, env })).stderr).toContain('refusing without --yes');
  expect((await db.sql(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'users'::regclass AND NOT tgisinternal`))[0].n).toBe(4);

  const done = await auditlog(['uninstall', '--yes'], { cwd: dir, env });
  expect(done).toMatchObject({ code: 0, stdout: expect.stringContaining('log entries kept') });
  expect((await db.sql(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'users'::regclass AND NOT tgisinternal`))[0].n).toBe(0);
  expect((await db.sql('SELECT count(*)::int AS n FROM auditlog.log_entry'))[0].n).toBe(1);
});
