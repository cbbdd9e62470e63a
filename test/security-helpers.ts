// Roles for attack tests. Roles are cluster-wide: names carry the test database's name, so
// parallel test files and servers never clash; dropRoles() runs after the database is dropped.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Client, Pool } from 'pg';
import { withAuditSession } from '../src/session';
import { serverUrl, type TestDatabase } from './helpers';

export const ROLE_PASSWORD = 'attack-test';

/** A role name unique to this test database. */
export function roleName(db: TestDatabase, suffix: string): string {
  return `${db.name}_${suffix}`;
}

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client(serverUrl());
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** CREATE ROLE … LOGIN with a password, so tests can connect as it like an application. */
export async function createLoginRole(name: string): Promise<void> {
  await admin((c) => c.query(`CREATE ROLE "${name}" LOGIN PASSWORD '${ROLE_PASSWORD}'`));
}

export async function dropRoles(names: string[]): Promise<void> {
  await admin(async (c) => {
    for (const name of names) await c.query(`DROP ROLE IF EXISTS "${name}"`);
  });
}

/** A connection URL to the test database as `role`. */
export function urlAs(db: TestDatabase, role: string): string {
  const u = new URL(db.url);
  u.username = encodeURIComponent(role);
  u.password = ROLE_PASSWORD;
  return u.toString();
}

/** Runs fn on a fresh connection logged in as `role`, always closed afterwards. */
export async function asRole<T>(db: TestDatabase, role: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client(urlAs(db, role));
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The SQLSTATE a query fails with (or 'ok' when it succeeds). */
export async function sqlState(c: Client, text: string, values?: unknown[]): Promise<string> {
  try {
    await c.query(text, values);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (dist/) as a subprocess, the way users run it. */
export function runCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const main = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { cwd, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A `docs` table written by a fresh login role `app`, installed with tenant isolation, and a
 * pool connected as that role holding three entries: tenants t1, t2, t1 (actor user-of-<tenant>).
 */
export async function tenantDocsAsApp(db: TestDatabase): Promise<{ app: string; pool: Pool }> {
  const app = roleName(db, 'app');
  await createLoginRole(app);
  await db.sql(`
    CREATE TABLE docs (id serial PRIMARY KEY, title text);
    GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO "${app}";
    GRANT USAGE ON SEQUENCE docs_id_seq TO "${app}";
  `);
  await db.install({ tables: { 'public.docs': {} }, tenantIsolation: true, roles: { app, bypass: roleName(db, 'bypass') } });
  const pool = new Pool({ connectionString: urlAs(db, app), max: 2 });
  for (const tenant of ['t1', 't2', 't1']) {
    await withAuditSession(pool, { tenant, actor: `user-of-${tenant}` }, (c) => c.query(`INSERT INTO docs (title) VALUES ($1)`, [tenant]));
  }
  return { app, pool };
}
