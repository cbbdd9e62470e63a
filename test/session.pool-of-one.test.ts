// No context leak from the savepoint paths of withAuditSession(): a nested session, and one on a
// client already inside a transaction, set their context transaction-locally too. On a pool of
// one connection, the next plain write after COMMIT must carry no context at all.
import { Pool, type PoolClient } from 'pg';
import { withAuditSession } from '../src/session';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;
let pool: Pool;

const FULL = { actor: 'inner', cid: 'inner-cid', remoteAddr: '10.1.2.3', data: { inner: true }, tenant: 'inner-tenant' };
const SETTINGS = ['auditlog.actor', 'auditlog.cid', 'auditlog.remote_addr', 'auditlog.data', 'auditlog.tenant', 'auditlog.disable'];

beforeAll(async () => {
  db = await createTestDatabase('session_pool1');
  await db.sql('CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL)');
  await db.install({ tables: { 'public.items': {} } });
  pool = new Pool({ connectionString: db.url, max: 1 });
});

afterAll(async () => {
  await pool.end();
  await db.drop();
});

beforeEach(() => db.sql('TRUNCATE items; TRUNCATE auditlog.log_entry'));

/** A plain write on the pool's only connection, then its entry and that connection's settings. */
async function plainWriteAfterwards(id: number) {
  await pool.query('INSERT INTO items VALUES ($1, 0)', [id]);
  const { rows: [settings] } = await pool.query(
    `SELECT ${SETTINGS.map((s, i) => `coalesce(current_setting('${s}', true), '') AS s${i}`).join(', ')}`);
  const [entry] = await db.entries(`object_pk = $1 AND action = 'insert'`, [String(id)]);
  return { entry, settings: Object.values(settings) };
}

function expectNoContext(after: Awaited<ReturnType<typeof plainWriteAfterwards>>) {
  expect(after.entry).toMatchObject({ actor: null, cid: null, remote_addr: null, additional_data: null, tenant_id: null });
  expect(after.settings).toEqual(SETTINGS.map(() => ''));
}

test('a nested withAuditSession leaves no context on the connection after COMMIT', async () => {
  await withAuditSession(pool, { actor: 'outer', cid: 'outer-cid' }, async (client) => {
    await client.query('INSERT INTO items VALUES (1, 1)');
    await withAuditSession(pool, FULL, (inner) => inner.query('INSERT INTO items VALUES (2, 1)'));
    await client.query('INSERT INTO items VALUES (3, 1)');
  });
  expect((await db.entries()).map((e) => [e.object_pk, e.actor])).toEqual([['1', 'outer'], ['2', 'inner'], ['3', 'outer']]);
  expectNoContext(await plainWriteAfterwards(100));
});

test('a nested session that switches capture off leaves capture on after COMMIT', async () => {
  await withAuditSession(pool, { actor: 'outer' }, async () => {
    await withAuditSession(pool, { disable: true }, (inner) => inner.query('INSERT INTO items VALUES (4, 1)'));
  });
  expectNoContext(await plainWriteAfterwards(101));
});

test('withAuditSession on a client already in a transaction leaves no context after COMMIT', async () => {
  const client: PoolClient = await pool.connect();
  try {
    await client.query('BEGIN');
    // The caller's own transaction-local context, restored after the session and gone at COMMIT.
    await client.query(`SELECT pg_catalog.set_config('auditlog.actor', 'caller', true)`);
    await client.query('INSERT INTO items VALUES (5, 1)');
    await withAuditSession(client, FULL, async (c) => {
      await c.query('INSERT INTO items VALUES (6, 1)');
      await withAuditSession(c, { actor: 'innermost' }, (cc) => cc.query('INSERT INTO items VALUES (7, 1)'));
    });
    await client.query('INSERT INTO items VALUES (8, 1)');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  expect((await db.entries()).map((e) => [e.object_pk, e.actor])).toEqual([['5', 'caller'], ['6', 'inner'], ['7', 'innermost'], ['8', 'caller']]);
  expectNoContext(await plainWriteAfterwards(102));
});

test('a session that throws inside a caller\'s transaction leaves no context after COMMIT', async () => {
  const client: PoolClient = await pool.connect();
  try {
    await client.query('BEGIN');
    await withAuditSession(client, FULL, async (c) => {
      await c.query('INSERT INTO items VALUES (9, 1)');
      throw new Error('inner failure');
    }).catch(() => undefined);
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  expectNoContext(await plainWriteAfterwards(103));
});
