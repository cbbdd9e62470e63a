// What the history module writes: reverts (audited updates), manual events, retention.
import { flush, getEntry, logEvent, revert, withAuditSession } from '../src';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

const CONFIG = {
  tables: {
    'public.users': { exclude: ['last_login'], mask: ['ssn'] },
    'public.order_items': {},
    'public.docs': {},
  },
};

beforeAll(async () => {
  db = await createTestDatabase('history_write');
  await db.sql(`
    CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, ssn text, last_login timestamptz, score numeric(12, 2));
    CREATE TABLE order_items (order_id int, line int, qty int, price numeric, PRIMARY KEY (order_id, line));
    CREATE TABLE docs (id bigint PRIMARY KEY, body jsonb, tags text[], at timestamptz, big bigint);
  `);
  await db.install(CONFIG);
});

afterAll(() => db.drop());

beforeEach(async () => {
  await db.sql('TRUNCATE users RESTART IDENTITY; TRUNCATE order_items; TRUNCATE docs');
  await db.sql('TRUNCATE auditlog.log_entry');
});

const last = async () => (await db.entries()).at(-1)!;

describe('revert', () => {
  test('writes the previous values back as an audited update carrying the session context', async () => {
    await db.sql(`INSERT INTO users (email, score) VALUES ('a@x', 10.50)`);
    await db.sql(`UPDATE users SET email = 'b@x', score = 99.99 WHERE id = 1`);
    const update = await last();
    const result = await withAuditSession(db.pool, { actor: 'admin', cid: 'undo-1' }, () => revert(db.pool, update.id));
    expect(result).toEqual({ table: 'public.users', objectPk: '1', fields: expect.arrayContaining(['email', 'score']) });
    expect(await db.sql('SELECT email, score::text FROM users')).toEqual([{ email: 'a@x', score: '10.50' }]);
    expect(await last()).toMatchObject({
      action: 'update', actor: 'admin', cid: 'undo-1', object_pk: '1',
      changes: { email: ['b@x', 'a@x'], score: [99.99, 10.5] },
    });
  });

  test('restores composite-keyed rows and values of every kind exactly (no JavaScript round trip)', async () => {
    await db.sql(`INSERT INTO order_items VALUES (7, 2, 1, 12345678901234567890.123456789)`);
    await db.sql(`UPDATE order_items SET qty = 3, price = 1 WHERE order_id = 7 AND line = 2`);
    await revert(db.pool, (await last()).id);
    expect(await db.sql('SELECT qty, price::text FROM order_items')).toEqual([{ qty: 1, price: '12345678901234567890.123456789' }]);

    await db.sql(`INSERT INTO docs VALUES (9007199254740993, '{"a": [1, null, {"b": "c"}]}', '{x,NULL,"y z"}', '2026-01-02T03:04:05.123456Z', 9007199254740993)`);
    await db.sql(`UPDATE docs SET body = '{}', tags = '{}', at = now(), big = 1`);
    await revert(db.pool, (await last()).id);
    const [row] = await db.sql(`SELECT body = '{"a": [1, null, {"b": "c"}]}' AS body, tags = '{x,NULL,"y z"}' AS tags,
                                      at = '2026-01-02T03:04:05.123456Z' AS at, big = 9007199254740993 AS big FROM docs`);
    expect(row).toEqual({ body: true, tags: true, at: true, big: true });
  });

  test('compares the row as typed values: another TimeZone or json spacing is not a conflict', async () => {
    await db.sql(`INSERT INTO docs (id, body, at) VALUES (1, '{"a": 1}', '2026-01-02T03:04:05Z')`);
    await db.sql(`UPDATE docs SET body = '{"a": 2}', at = '2026-02-02T00:00:00Z'`);
    const update = await last();
    await db.withClient(async (c) => {
      await c.query(`SET TimeZone = 'Asia/Kolkata'`);
      await revert(c, update.id);
    });
    expect((await db.sql(`SELECT body, at = '2026-01-02T03:04:05Z' AS same FROM docs`))[0]).toEqual({ body: { a: 1 }, same: true });
  });

  test('refuses when the row changed again after the entry, unless forced', async () => {
    await db.sql(`INSERT INTO users (email) VALUES ('a@x')`);
    await db.sql(`UPDATE users SET email = 'b@x' WHERE id = 1`);
    const first = await last();
    await db.sql(`UPDATE users SET email = 'c@x' WHERE id = 1`);
    await expect(revert(db.pool, first.id)).rejects.toMatchObject({ code: 'REVERT_CONFLICT', message: expect.stringMatching(/changed again.*force/) });
    expect((await db.sql('SELECT email FROM users'))[0].email).toBe('c@x');
    await revert(db.pool, first.id, { force: true });
    expect((await db.sql('SELECT email FROM users'))[0].email).toBe('a@x');
  });

  test('refuses masked fields, excluded fields, non-update entries and missing rows clearly', async () => {
    await db.sql(`INSERT INTO users (email, ssn) VALUES ('a@x', 's1')`);
    await db.sql(`UPDATE users SET ssn = 's2' WHERE id = 1`);
    const masked = await last();
    await expect(revert(db.pool, masked.id)).rejects.toMatchObject({ code: 'REVERT_REFUSED', message: expect.stringMatching(/ssn .*masked/) });
    expect((await db.sql('SELECT ssn FROM users'))[0].ssn).toBe('s2');

    const insert = (await db.entries())[0]!;
    await expect(revert(db.pool, insert.id)).rejects.toThrow(/records "insert"; only update entries/);
    await expect(revert(db.pool, '999999')).rejects.toMatchObject({ code: 'NOT_FOUND' });

    await db.sql(`UPDATE users SET email = 'b@x' WHERE id = 1`);
    const emailChange = await last();
    // The field became excluded after the entry was written: writing it back would go unlogged.
    await db.install({ tables: { ...CONFIG.tables, 'public.users': { exclude: ['last_login', 'email'], mask: ['ssn'] } } });
    try {
      await expect(revert(db.pool, emailChange.id)).rejects.toThrow(/email of public\.users are excluded/);
    } finally {
      await db.install(CONFIG);
    }
    await db.sql('DELETE FROM users');
    await expect(revert(db.pool, emailChange.id)).rejects.toThrow(/no longer exists/);
  });
});

describe('logEvent', () => {
  test('records a manual entry with the session context, composite key and data', async () => {
    const id = await withAuditSession(db.pool, { actor: 'u:1', cid: 'req-9', remoteAddr: '10.0.0.1', tenant: 't1', data: { via: 'api', reason: 'x' } }, () =>
      logEvent(db.pool, { action: 'export', table: 'order_items', objectPk: [7, 2], objectRepr: 'order 7 line 2', data: { format: 'csv', reason: 'audit' } }));
    expect(await getEntry(db.pool, id)).toMatchObject({
      action: 'export', table_schema: 'public', table_name: 'order_items', object_pk: '[7, 2]', object_repr: 'order 7 line 2',
      actor: 'u:1', cid: 'req-9', remote_addr: '10.0.0.1', tenant_id: 't1', changes: null,
      additional_data: { via: 'api', reason: 'audit', format: 'csv' },
    });
  });

  test('with a client, uses the context set in its transaction; without one, none', async () => {
    await db.withClient(async (c) => {
      await c.query('BEGIN');
      await c.query(`SELECT set_config('auditlog.actor', 'direct', true)`);
      await logEvent(c, { action: 'login' });
      await c.query('COMMIT');
      await logEvent(c, { action: 'logout' });
    });
    const [login, logout] = await db.entries();
    expect(login).toMatchObject({ action: 'login', actor: 'direct', table_name: null, object_pk: null, additional_data: null });
    expect(logout).toMatchObject({ action: 'logout', actor: null });
  });

  test('refuses captured verbs and malformed actions, in the API and in SQL', async () => {
    await expect(logEvent(db.pool, { action: 'update', table: 'users', objectPk: 1 })).rejects.toThrow(/reserved/);
    await expect(logEvent(db.pool, { action: 'Access!' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(logEvent(db.pool, { action: 'access', objectPk: 1 })).rejects.toThrow(/needs the table/);
    await expect(db.sql(`SELECT auditlog.log_event('delete', 'public', 'users', '1')`)).rejects.toThrow(/"delete" is reserved: pg-auditlog writes it itself/);
    await expect(db.sql(`SELECT auditlog.log_event('access', NULL, NULL, '1')`)).rejects.toThrow(/only together with its table/);
    expect(await db.entries()).toEqual([]);
  });
});

describe('flush', () => {
  test('deletes entries before the date in batches, only of the table given, and leaves a trace', async () => {
    await db.sql(`INSERT INTO users (email) SELECT 'u' || i FROM generate_series(1, 25) i`);
    await db.sql(`INSERT INTO order_items SELECT i, 1, 1, 1 FROM generate_series(1, 5) i`);
    // Age the first 20 user entries and every order entry.
    await db.sql(`UPDATE auditlog.log_entry SET ts = '2020-06-01T00:00:00Z'
                  WHERE table_name = 'order_items' OR (table_name = 'users' AND object_pk::int <= 20)`);
    const progress: number[] = [];
    const result = await flush(db.pool, { beforeDate: '2021-01-01', table: 'users', batchSize: 6, progress: (n) => { progress.push(n); } });
    expect(result).toEqual({ deleted: 20, batches: 4 });
    expect(progress).toEqual([6, 12, 18, 20]);
    const left = await db.entries();
    expect(left.filter((e) => e.table_name === 'users' && e.action === 'insert').map((e) => e.object_pk)).toEqual(['21', '22', '23', '24', '25']);
    expect(left.filter((e) => e.table_name === 'order_items')).toHaveLength(5);
    expect(left.at(-1)).toMatchObject({ action: 'flush', table_name: 'users', additional_data: { beforeDate: '2021-01-01', deleted: 20 } });

    expect((await flush(db.pool, { beforeDate: '2021-01-01T00:00:00+02:00' })).deleted).toBe(5);
    expect((await flush(db.pool, {})).deleted).toBe(7);
    expect((await db.entries()).map((e) => e.action)).toEqual(['flush']);
  });

  test('each batch commits on its own: others see the progress and write to the log meanwhile', async () => {
    await db.sql(`INSERT INTO users (email) SELECT 'u' || i FROM generate_series(1, 30) i`);
    const seen: number[] = [];
    await db.withClient(async (other) => {
      await other.query(`SET lock_timeout = '500ms'`);
      await flush(db.pool, {
        batchSize: 10,
        progress: async () => {
          // Runs between batches; a batch still holding locks or uncommitted would show here.
          seen.push((await other.query('SELECT count(*)::int AS n FROM auditlog.log_entry')).rows[0].n);
          await other.query(`INSERT INTO order_items VALUES ($1, 1, 1, 1)`, [seen.length]);
        },
      });
    });
    // 30 entries, minus 10 per batch, plus one order entry written after each earlier batch.
    expect(seen).toEqual([20, 11, 2]);
    expect((await db.entries()).map((e) => e.table_name ?? e.action)).toEqual(['order_items', 'order_items', 'order_items', 'flush']);
  });

  test('refuses dates that are not ISO 8601, deleting nothing', async () => {
    await db.sql(`INSERT INTO users (email) VALUES ('a@x')`);
    for (const bad of ['01/02/2021', '2021-1-1', 'last year', '2021-01-01 00:00:00', '2021-02-29']) {
      await expect(flush(db.pool, { beforeDate: bad })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(await db.entries()).toHaveLength(1);
  });
});
