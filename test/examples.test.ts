// The programs in examples/ run as users run them (tsx, importing 'pg-auditlog' from the built
// package), each against its own database, and every entry they write is attributed.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from './helpers';

const run = promisify(execFile);
const root = join(__dirname, '..');
// Each example with the packages it needs; one whose packages did not install is not run.
const EXAMPLES: Record<string, string[]> = {
  'express-kysely': ['express', 'kysely'],
  'fastify-drizzle': ['fastify', 'drizzle-orm'],
  'prisma-adapter': ['@prisma/adapter-pg'],
  knex: ['knex'],
  'postgres-js': ['postgres'],
};
const installed = (pkg: string) => existsSync(join(root, 'node_modules', pkg, 'package.json'));

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase('examples'); });
afterAll(() => db.drop());

for (const [name, packages] of Object.entries(EXAMPLES)) {
  const maybe = packages.every(installed) ? it : it.skip;
  maybe(`examples/${name}.ts runs and attributes every entry`, async () => {
    const { stdout } = await run(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), join(root, 'examples', `${name}.ts`)], {
      cwd: root, env: { ...process.env, DATABASE_URL: db.url }, timeout: 60_000,
    });
    expect(stdout).toMatch(/^ok: \d+ entries attributed to /m);
  });
}
