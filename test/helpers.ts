// Test resources: a database per test file, clients that are always released.
import { randomBytes } from 'node:crypto';
import { Client, Pool, type ClientBase } from 'pg';
import { install } from '../src/install';
import { verify } from '../src/security/verify';
import type { AuditConfig, LogEntry, VerifyReport } from '../src/interfaces';

export function serverUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the tests through jest (its global setup sets it)');
  return url;
}

export interface TestDatabase {
  name: string;
  url: string;
  pool: Pool;
  /** Runs fn with a dedicated connected client, always closed afterwards. */
  withClient<T>(fn: (client: Client) => Promise<T>): Promise<T>;
  /** Runs SQL on a fresh connection. */
  sql(text: string, values?: unknown[]): Promise<any[]>;
  /** Installs the config; returns nothing, throws like install(). */
  install(config: AuditConfig): Promise<void>;
  /** Every log entry, oldest first. */
  entries(where?: string, values?: unknown[]): Promise<LogEntry[]>;
  drop(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** A new, empty database on the test server; drop() removes it (call it in afterAll). */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `auditlog_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const admin = new Client(serverUrl());
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl(), name);
  const pool = new Pool({ connectionString: url, max: 5 });
  // An idle pooled connection can be closed by the server; the pool replaces it. Without a
  // listener that 'error' event would crash the test process.
  pool.on('error', () => undefined);
  const withClient = async <T>(fn: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client(url);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  const sql = (text: string, values?: unknown[]) => withClient(async (c) => (await c.query(text, values)).rows);
  return {
    name,
    url,
    pool,
    withClient,
    sql,
    install: (config) => withClient(async (c) => { await install(c, withTestPartitioning(config)); }),
    entries: async (where = 'true', values) =>
      (await sql(`SELECT * FROM auditlog.log_entry WHERE ${where} ORDER BY id`, values)) as LogEntry[],
    async drop() {
      await pool.end();
      const c = new Client(serverUrl());
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * AUDITLOG_TEST_PARTITIONING=day|week|month runs the suite's installs with a partitioned log
 * (docs/partitioning.md): the same tests must pass either way.
 */
export function withTestPartitioning(config: AuditConfig): AuditConfig {
  const interval = process.env.AUDITLOG_TEST_PARTITIONING;
  if (interval !== 'day' && interval !== 'week' && interval !== 'month') return config;
  return config.partitioning ? config : { ...config, partitioning: { interval } };
}

/** Runs fn inside BEGIN … ROLLBACK, for tests that only look. */
export async function rolledBack<T>(client: ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    return await fn();
  } finally {
    await client.query('ROLLBACK');
  }
}

/**
 * verify() until every committed entry is sealed: the sealing horizon is the oldest transaction
 * running anywhere in the cluster, so other test files' transactions can hold it back a moment.
 */
export async function verifySealed(db: TestDatabase, config: AuditConfig): Promise<VerifyReport> {
  for (let i = 0; ; i++) {
    const r = await db.withClient((c) => verify(c, config));
    const [{ n }] = await db.sql('SELECT count(*)::int AS n FROM auditlog.log_entry');
    if (r.sealedTotal >= n || i === 200) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Polls until `check` returns true; fails naming `what` after `ms`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000, everyMs = 20): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
