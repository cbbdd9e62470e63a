// auditPool(): the ambient context reaches every write, in the round trips the caller makes
// anyway, and never outlives its transaction. Round trips are counted from the server's
// ReadyForQuery messages (one per simple query or per Sync).
import { Pool, type PoolClient } from 'pg';
import Cursor from 'pg-cursor';
import QueryStream from 'pg-query-stream';
import { Kysely, PostgresDialect, sql as ksql } from 'kysely';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql as dsql } from 'drizzle-orm';
import knexFactory from 'knex';
import { PrismaPg } from '@prisma/adapter-pg';
import { auditPool } from '../src/integrations';
import { getAuditContext, runWithAuditContext, serializeAuditContext, withAuditSession } from '../src/session';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;
let raw: Pool;
let pool: Pool;
let roundTrips = 0;

const CONFIG = {
  tables: { 'public.users': { mode: 'statement' as const }, 'public.items': { mode: 'row' as const } },
};

function countingPool(max: number): Pool {
  const p = new Pool({ connectionString: db.url, max });
  p.on('error', () => undefined);
  p.on('connect', (client) => {
    (client as unknown as { connection: NodeJS.EventEmitter }).connection.on('readyForQuery', () => { roundTrips++; });
  });
  return p;
}

async function trips<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const before = roundTrips;
  const result = await fn();
  return [result, roundTrips - before];
}

beforeAll(async () => {
  db = await createTestDatabase('int_pool');
  await db.sql(`CREATE TABLE users (id int PRIMARY KEY, email text UNIQUE);
                CREATE TABLE items (id int PRIMARY KEY, name text)`);
  await db.install(CONFIG);
  raw = countingPool(1);
  pool = auditPool(raw);
});
afterAll(async () => {
  await raw.end();
  await db.drop();
});
beforeEach(async () => {
  await db.sql('TRUNCATE users, items; DELETE FROM auditlog.log_entry');
});

const ctx = { actor: 'alice', cid: 'req-1', remoteAddr: '10.1.2.3', data: { route: '/x' } };
const actors = async (table: string) =>
  (await db.entries(`table_name = $1`, [table])).map((e) => e.actor);
const leftover = async (client: PoolClient | Pool) =>
  (await client.query(`SELECT coalesce(current_setting('auditlog.actor', true), '') AS a,
                              coalesce(current_setting('auditlog.cid', true), '') AS c`)).rows[0];

describe('auditPool without a context', () => {
  it('is the bare pool: same results, same round trips, instanceof Pool', async () => {
    expect(pool).toBeInstanceOf(Pool);
    expect(pool.totalCount).toBe(raw.totalCount);
    const [res, n] = await trips(() => pool.query('INSERT INTO users VALUES ($1, $2) RETURNING id', [1, 'a']));
    expect(res.rows).toEqual([{ id: 1 }]);
    expect(n).toBe(1);
    const client = await pool.connect();
    try {
      const [, m] = await trips(async () => {
        await client.query('BEGIN');
        await client.query('INSERT INTO items VALUES (1, $1)', ['x']);
        await client.query('COMMIT');
      });
      expect(m).toBe(3);
    } finally {
      client.release();
    }
    expect(await actors('users')).toEqual([null]);
    expect(await actors('items')).toEqual([null]);
  });
});

describe('auditPool with an ambient context', () => {
  it('pool.query with parameters: attributed in one round trip (statement and row mode)', async () => {
    await runWithAuditContext(ctx, async () => {
      const [res, n] = await trips(() => pool.query('INSERT INTO users VALUES ($1, $2) RETURNING email', [1, 'a']));
      expect(res.rows).toEqual([{ email: 'a' }]);
      expect(res.rowCount).toBe(1);
      expect(n).toBe(1);
      const [, m] = await trips(() => pool.query('INSERT INTO items VALUES (1, $1)', ['x']));
      expect(m).toBe(1);
    });
    const [entry] = await db.entries(`table_name = 'users'`);
    expect(entry).toMatchObject({ actor: 'alice', cid: 'req-1', remote_addr: '10.1.2.3', additional_data: { route: '/x' } });
    expect(await actors('items')).toEqual(['alice']);
    expect(await leftover(pool)).toEqual({ a: '', c: '' });
  });

  it('a simple query (no parameters), callback style, and multi-statement text', async () => {
    await runWithAuditContext(ctx, async () => {
      const res = await new Promise<any>((resolve, reject) =>
        pool.query(`INSERT INTO users VALUES (1, 'a') RETURNING id`, (err: Error | undefined, r: unknown) => (err ? reject(err) : resolve(r))));
      expect(res.rows).toEqual([{ id: 1 }]);
      const client = await pool.connect();
      try {
        const [multi, n] = await trips(() => client.query(`INSERT INTO items VALUES (1, 'x'); SELECT 42 AS answer`) as Promise<any>);
        expect(n).toBe(1);
        expect(multi).toHaveLength(2);
        expect(multi[1].rows).toEqual([{ answer: 42 }]);
      } finally {
        client.release();
      }
    });
    expect(await actors('users')).toEqual(['alice']);
    expect(await actors('items')).toEqual(['alice']);
  });

  it('BEGIN on a checked-out client carries the context in the same round trip; nothing leaks to the next user', async () => {
    const client = await pool.connect();
    try {
      await runWithAuditContext(ctx, async () => {
        const [begin, n] = await trips(() => client.query('begin'));
        expect(n).toBe(1);
        expect(begin.command).toBe('BEGIN');
        await client.query('INSERT INTO users VALUES ($1, $2)', [1, 'a']);
        await client.query('INSERT INTO items VALUES ($1, $2)', [1, 'x']);
        expect(await leftover(client)).toEqual({ a: 'alice', c: 'req-1' });
        await client.query('COMMIT');
      });
      // Same connection (the pool has one), no context now.
      expect(await leftover(client)).toEqual({ a: '', c: '' });
      await client.query('INSERT INTO users VALUES (2, $1)', ['b']);
    } finally {
      client.release();
    }
    expect(await leftover(pool)).toEqual({ a: '', c: '' });
    expect(await actors('users')).toEqual(['alice', null]);
    expect(await actors('items')).toEqual(['alice']);
  });

  it('START TRANSACTION with options, savepoints, rollback to savepoint, errors inside a transaction', async () => {
    const client = await pool.connect();
    try {
      await runWithAuditContext(ctx, async () => {
        await client.query('START TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        await client.query('SAVEPOINT a');
        await client.query('INSERT INTO users VALUES (1, $1)', ['a']);
        await expect(client.query('INSERT INTO users VALUES (1, $1)', ['dup'])).rejects.toThrow(/duplicate key/);
        await client.query('ROLLBACK TO SAVEPOINT a');
        await client.query('INSERT INTO users VALUES (2, $1)', ['b']);
        await client.query('COMMIT');
      });
    } finally {
      client.release();
    }
    expect(await actors('users')).toEqual(['alice']);
    expect((await db.entries())[0]!.object_pk).toBe('2');
  });

  it('an error outside a transaction leaves the connection clean and reports the caller\'s position', async () => {
    await runWithAuditContext(ctx, async () => {
      await pool.query('INSERT INTO users VALUES (1, $1)', ['a']);
      await expect(pool.query('INSERT INTO users VALUES (1, $1)', ['a'])).rejects.toThrow(/duplicate key/);
      const err = await pool.query('SELECT nonsense_column FROM users').catch((e) => e);
      expect(err.position).toBe('8');
      await pool.query('INSERT INTO users VALUES (2, $1)', ['b']);
    });
    expect(await actors('users')).toEqual(['alice', 'alice']);
  });

  it('named prepared statements, rowMode and custom type parsers (as @prisma/adapter-pg sends them)', async () => {
    await runWithAuditContext(ctx, async () => {
      for (const id of [1, 2]) {
        const res = await pool.query({
          name: 'ins', text: 'INSERT INTO users VALUES ($1, $2) RETURNING id, email', values: [id, `e${id}`], rowMode: 'array',
          types: { getTypeParser: () => (v: string) => `<${v}>` },
        } as any);
        expect(res.rows).toEqual([[`<${id}>`, `<e${id}>`]]);
      }
    });
    expect(await actors('users')).toEqual(['alice', 'alice']);
  });

  it('pg-cursor and pg-query-stream outside a transaction read the context', async () => {
    await runWithAuditContext(ctx, async () => {
      const client = await pool.connect();
      try {
        const cursor = client.query(new Cursor(`SELECT current_setting('auditlog.actor', true) AS a, $1::int AS n`, [7]));
        const rows = await cursor.read(10);
        await cursor.close();
        expect(rows).toEqual([{ a: 'alice', n: 7 }]);
        const stream = client.query(new QueryStream(`SELECT current_setting('auditlog.cid', true) AS c FROM generate_series(1, 3)`));
        const seen: unknown[] = [];
        for await (const row of stream) seen.push(row);
        expect(seen).toEqual([{ c: 'req-1' }, { c: 'req-1' }, { c: 'req-1' }]);
      } finally {
        client.release();
      }
    });
    expect(await leftover(pool)).toEqual({ a: '', c: '' });
  });

  it('withAuditSession on the audited pool, nested, and the other-connection trap', async () => {
    await runWithAuditContext({ actor: 'outer', cid: 'c-1' }, async () => {
      await withAuditSession(pool, { actor: 'session' }, async (client) => {
        expect(getAuditContext()).toMatchObject({ actor: 'session', cid: 'c-1' });
        await client.query('INSERT INTO users VALUES (1, $1)', ['a']);
        await withAuditSession(pool, { actor: 'inner' }, async (inner) => {
          expect(inner).toBe(client);
          await inner.query('INSERT INTO users VALUES (2, $1)', ['b']);
        });
      });
    });
    // A raw pool's session, and a write through the audited pool on another connection.
    const other = auditPool(countingPool(2));
    try {
      const plain = new Pool({ connectionString: db.url, max: 1 });
      await withAuditSession(plain, { actor: 'bob' }, async () => {
        await other.query('INSERT INTO items VALUES (1, $1)', ['x']);
      });
      await plain.end();
    } finally {
      await other.end();
    }
    const entries = await db.entries();
    expect(entries.map((e) => [e.table_name, e.actor, e.cid])).toEqual([
      ['users', 'session', 'c-1'], ['users', 'inner', 'c-1'], ['items', 'bob', null],
    ]);
  });

  it('serializeAuditContext carries a context into a job and back', async () => {
    const payload = await runWithAuditContext(ctx, async () => JSON.stringify({ auditContext: serializeAuditContext() }));
    expect(getAuditContext()).toBeUndefined();
    await runWithAuditContext(JSON.parse(payload).auditContext, () => pool.query('INSERT INTO users VALUES (1, $1)', ['a']));
    expect((await db.entries())[0]).toMatchObject({ actor: 'alice', cid: 'req-1' });
    expect(serializeAuditContext()).toBeUndefined();
  });

  it('an invalid context fails the query, not the process', async () => {
    expect(() => runWithAuditContext({ remoteAddr: 'nope' }, () => 1)).toThrow(/remoteAddr/);
  });
});

describe('ORMs through auditPool', () => {
  it('Kysely: single queries (each through connect()) and transactions, 0 extra round trips', async () => {
    const k = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    await runWithAuditContext({ actor: 'kysely' }, async () => {
      const [, n] = await trips(() => k.insertInto('users').values({ id: 1, email: 'a' }).execute());
      expect(n).toBe(1);
      const [, m] = await trips(() => k.transaction().execute(async (trx) => {
        await trx.insertInto('items').values({ id: 1, name: 'x' }).execute();
        await trx.updateTable('users').set({ email: 'b' }).where('id', '=', 1).execute();
      }));
      expect(m).toBe(4);
      await k.transaction().setIsolationLevel('serializable').execute((trx) =>
        trx.deleteFrom('users').where('id', '=', 1).execute());
      const { rows } = await ksql<{ a: string }>`SELECT current_setting('auditlog.actor', true) AS a`.execute(k);
      expect(rows).toEqual([{ a: 'kysely' }]);
    });
    expect(await actors('users')).toEqual(['kysely', 'kysely', 'kysely']);
    expect(await actors('items')).toEqual(['kysely']);
  });

  it('Drizzle: pool queries and transactions', async () => {
    const d = drizzle(pool);
    await runWithAuditContext({ actor: 'drizzle' }, async () => {
      await d.execute(dsql`INSERT INTO users VALUES (${1}, ${'a'})`);
      await d.transaction(async (tx) => {
        await tx.execute(dsql`INSERT INTO items VALUES (${1}, ${'x'})`);
        await tx.transaction(async (sp) => { await sp.execute(dsql`UPDATE users SET email = ${'b'}`); });
      });
    });
    expect(await actors('users')).toEqual(['drizzle', 'drizzle']);
    expect(await actors('items')).toEqual(['drizzle']);
    expect(await leftover(pool)).toEqual({ a: '', c: '' });
  });

  // Knex's .stream() with a connectionPool releases its client twice (knex 3.3, with a bare
  // pg.Pool too): streams are covered by the pg-query-stream test above.
  it('Knex (connectionPool: the audited pool): queries and transactions', async () => {
    const kx = knexFactory({ client: 'pg', connectionPool: pool } as any);
    try {
      await runWithAuditContext({ actor: 'knex' }, async () => {
        await kx('users').insert({ id: 1, email: 'a' });
        await kx.transaction(async (trx) => {
          await trx('items').insert({ id: 1, name: 'x' });
          await trx('users').where({ id: 1 }).update({ email: 'b' });
        });
        const { rows } = await kx.raw(`SELECT current_setting('auditlog.actor', true) AS a`);
        expect(rows).toEqual([{ a: 'knex' }]);
      });
    } finally {
      await kx.destroy();
    }
    expect(await actors('users')).toEqual(['knex', 'knex']);
    expect(await actors('items')).toEqual(['knex']);
  });

  it('Prisma driver adapter (@prisma/adapter-pg): queries and a transaction as the engine drives them', async () => {
    const adapter = await new PrismaPg(pool).connect();
    await runWithAuditContext({ actor: 'prisma' }, async () => {
      await adapter.executeRaw({ sql: 'INSERT INTO users VALUES ($1, $2)', args: [1, 'a'], argTypes: [{ scalarType: 'int', arity: 'scalar' }, { scalarType: 'string', arity: 'scalar' }] } as any);
      const tx = await adapter.startTransaction();
      await tx.executeRaw({ sql: 'INSERT INTO items VALUES ($1, $2)', args: [1, 'x'], argTypes: [{ scalarType: 'int', arity: 'scalar' }, { scalarType: 'string', arity: 'scalar' }] } as any);
      await tx.executeRaw({ sql: 'COMMIT', args: [], argTypes: [] } as any);
      await tx.commit();
    });
    await adapter.dispose();
    expect(await actors('users')).toEqual(['prisma']);
    expect(await actors('items')).toEqual(['prisma']);
    expect(await leftover(pool)).toEqual({ a: '', c: '' });
  });
});
