// withAuditSession(): context reaches the entries, transactions behave, clients are released.
import { Client, Pool } from 'pg';
import { AuditLogError } from '../src/errors';
import { currentAuditContext, withAuditSession } from '../src/session';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('session');
  await db.sql('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)');
  await db.install({ tables: { 'public.accounts': {} } });
});

afterAll(() => db.drop());

beforeEach(() => db.sql('TRUNCATE accounts; TRUNCATE auditlog.log_entry'));

test('sets actor, cid, remote address, data and tenant on every entry, and commits', async () => {
  const result = await withAuditSession(
    db.pool,
    { actor: 'user:42', cid: 'req-9', remoteAddr: '2001:db8::1', data: { reason: 'support ticket 7' }, tenant: 'acme' },
    async (client) => {
      await client.query('INSERT INTO accounts VALUES (1, 100), (2, 50)');
      return 'done';
    },
  );
  expect(result).toBe('done');
  const entries = await db.entries();
  expect(entries).toHaveLength(2);
  for (const e of entries) {
    expect(e).toMatchObject({
      actor: 'user:42', cid: 'req-9', remote_addr: '2001:db8::1', additional_data: { reason: 'support ticket 7' }, tenant_id: 'acme',
    });
  }
  expect(db.pool.idleCount).toBe(db.pool.totalCount); // client released
});

test('rolls back on throw, rethrows, and releases the client', async () => {
  await expect(withAuditSession(db.pool, { actor: 'user:1' }, async (client) => {
    await client.query('INSERT INTO accounts VALUES (3, 1)');
    throw new Error('boom');
  })).rejects.toThrow('boom');
  expect(await db.sql('SELECT * FROM accounts')).toEqual([]);
  expect(await db.entries()).toEqual([]);
  expect(db.pool.idleCount).toBe(db.pool.totalCount);
});

test('the context does not outlive the transaction on a pooled connection', async () => {
  const pool = new Pool({ connectionString: db.url, max: 1 });
  try {
    await withAuditSession(pool, { actor: 'user:leak?' }, (c) => c.query('INSERT INTO accounts VALUES (4, 1)'));
    await pool.query('UPDATE accounts SET balance = 2 WHERE id = 4'); // same single connection, no session
    const [, after] = await db.entries();
    expect(after).toMatchObject({ action: 'update', actor: null });
  } finally {
    await pool.end();
  }
});

test('200 concurrent sessions over a pool of 5 never see each other\'s actor', async () => {
  await db.sql('INSERT INTO accounts SELECT i, 0 FROM generate_series(1, 200) i');
  await db.sql('TRUNCATE auditlog.log_entry');
  await Promise.all(Array.from({ length: 200 }, (_, i) => withAuditSession(
    db.pool, { actor: `user:${i + 1}`, cid: `req-${i + 1}` },
    async (client) => {
      // Yield between statements so sessions interleave on the five connections.
      await client.query('SELECT pg_sleep(0.001)');
      await client.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [i + 1]);
      expect(currentAuditContext()?.actor).toBe(`user:${i + 1}`);
    },
  )));
  const entries = await db.entries();
  expect(entries).toHaveLength(200);
  for (const e of entries) {
    expect(e.actor).toBe(`user:${e.object_pk}`);
    expect(e.cid).toBe(`req-${e.object_pk}`);
  }
});

test('nested sessions reuse the outer transaction; the inner context applies inside only', async () => {
  await expect(withAuditSession(db.pool, { actor: 'outer', cid: 'c1' }, async (client) => {
    await client.query('INSERT INTO accounts VALUES (10, 1)');
    await withAuditSession(db.pool, { actor: 'inner' }, async (inner) => {
      expect(inner).toBe(client);
      await inner.query('INSERT INTO accounts VALUES (11, 1)');
    });
    // A failing inner session rolls back only its own work.
    await withAuditSession(db.pool, { actor: 'failing' }, async (inner) => {
      await inner.query('INSERT INTO accounts VALUES (12, 1)');
      throw new Error('inner failure');
    }).catch(() => undefined);
    await client.query('INSERT INTO accounts VALUES (13, 1)');
  })).resolves.toBeUndefined();
  const entries = await db.entries();
  expect(entries.map((e) => [e.object_pk, e.actor, e.cid])).toEqual([
    ['10', 'outer', 'c1'], ['11', 'inner', 'c1'], ['13', 'outer', 'c1'],
  ]);
  expect(new Set(entries.map((e) => e.txid)).size).toBe(1);
});

test('with a client already in a transaction: a savepoint, and the caller\'s transaction stays open', async () => {
  await db.withClient(async (client) => {
    await client.query('BEGIN');
    await client.query('INSERT INTO accounts VALUES (20, 1)');
    await withAuditSession(client, { actor: 'in-tx' }, (c) => c.query('INSERT INTO accounts VALUES (21, 1)'));
    expect(client.getTransactionStatus()).toBe('T');
    await client.query('INSERT INTO accounts VALUES (22, 1)');
    await client.query('COMMIT');
  });
  const entries = await db.entries();
  expect(entries.map((e) => [e.object_pk, e.actor])).toEqual([['20', null], ['21', 'in-tx'], ['22', null]]);
});

test('with an idle client: its own transaction, and the client is left open', async () => {
  const client = new Client(db.url);
  await client.connect();
  try {
    await withAuditSession(client, { actor: 'direct' }, (c) => c.query('INSERT INTO accounts VALUES (30, 1)'));
    expect(client.getTransactionStatus()).toBe('I');
    expect((await client.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n).toBe(1);
  } finally {
    await client.end();
  }
  expect((await db.entries())[0]!.actor).toBe('direct');
});

test('a client in an aborted transaction is refused clearly', async () => {
  await db.withClient(async (client) => {
    await client.query('BEGIN');
    await client.query('SELECT 1/0').catch(() => undefined);
    await expect(withAuditSession(client, { actor: 'x' }, async () => undefined))
      .rejects.toMatchObject({ code: 'TRANSACTION_ABORTED' });
    await client.query('ROLLBACK');
  });
});

test('invalid context is rejected before anything runs, naming the field', async () => {
  const fn = jest.fn();
  const attempt = (ctx: object) => withAuditSession(db.pool, ctx as never, fn);
  await expect(attempt({ remoteAddr: '999.1.1.1' })).rejects.toThrow(/remoteAddr "999.1.1.1" is not an IPv4 or IPv6 address/);
  await expect(attempt({ actor: 'a\u0000b' })).rejects.toThrow(/actor contains a NUL character/);
  await expect(attempt({ actr: 'typo' })).rejects.toThrow(/unknown context key "actr"/);
  await expect(attempt({ data: 'not an object' })).rejects.toThrow(/data must be a plain object/);
  await expect(attempt({ actor: 42 })).rejects.toBeInstanceOf(AuditLogError);
  expect(fn).not.toHaveBeenCalled();
  expect(db.pool.idleCount).toBe(db.pool.totalCount);
});

test('CIDR addresses and unusual but valid strings are stored as given', async () => {
  const actor = `o'brien "quoted" ; DROP TABLE accounts; -- ünïcødé 🎉`;
  await withAuditSession(db.pool, { actor, remoteAddr: '192.168.0.0/16', data: { s: "it's" } },
    (c) => c.query('INSERT INTO accounts VALUES (40, 1)'));
  expect((await db.entries())[0]).toMatchObject({ actor, remote_addr: '192.168.0.0/16', additional_data: { s: "it's" } });
});

test('values with quotes and backslashes are stored exactly, whatever standard_conforming_strings says', async () => {
  const actor = String.raw`o'neil\n\\x'; SELECT 1; --\'`;
  for (const scs of ['on', 'off']) {
    await db.sql('TRUNCATE auditlog.log_entry');
    const client = new Client(db.url);
    await client.connect();
    try {
      await client.query(`SET standard_conforming_strings = ${scs}`);
      await withAuditSession(client, { actor, cid: '\\', data: { s: '\\\'' } }, (c) => c.query('INSERT INTO accounts VALUES (50, 1) ON CONFLICT DO NOTHING'));
      await client.query('DELETE FROM accounts WHERE id = 50');
    } finally {
      await client.end();
    }
    expect((await db.entries())[0]).toMatchObject({ actor, cid: '\\', additional_data: { s: '\\\'' } });
  }
});
