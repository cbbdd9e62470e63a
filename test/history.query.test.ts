// Reading the log: every filter, cursor pagination, display names and masking, reports.
import {
  AuditLogError, describeEntries, describeEntry, getForObject, getForObjects, history, report, withAuditSession,
} from '../src';
import { allHistory } from '../src/history';
import { parseInstant } from '../src/history/common';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('history_query');
  await db.sql(`
    CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, ssn text, last_login timestamptz);
    CREATE TABLE order_items (order_id int, line int, qty int, PRIMARY KEY (order_id, line));
    CREATE TABLE shards (shard bigint, n int, v text, PRIMARY KEY (shard, n));
  `);
  await db.install({
    tables: {
      'public.users': { exclude: ['last_login'], mask: ['ssn'], mapping: { email: 'E-mail address' } },
      'public.order_items': {},
      'public.shards': {},
    },
  });
});

afterAll(() => db.drop());

beforeEach(async () => {
  await db.sql('TRUNCATE auditlog.log_entry');
  await db.sql('TRUNCATE users RESTART IDENTITY; TRUNCATE order_items');
  await db.sql('TRUNCATE auditlog.log_entry');
});

const ids = (entries: Array<{ id: string }>) => entries.map((e) => Number(e.id));

test('object history is newest first and pages with a cursor until nextCursor is null', async () => {
  await db.sql(`INSERT INTO users (email) VALUES ('a0@x')`);
  for (let i = 1; i <= 4; i++) await db.sql(`UPDATE users SET email = $1 WHERE id = 1`, [`a${i}@x`]);
  await db.sql(`INSERT INTO users (email) VALUES ('other@x')`);
  const all = await db.entries(`table_name = 'users' AND object_pk = '1'`);
  expect(all).toHaveLength(5);

  const first = await getForObject(db.pool, 'users', 1, { limit: 2 });
  expect(ids(first.entries)).toEqual(ids(all).reverse().slice(0, 2));
  const second = await getForObject(db.pool, 'public.users', '1', { limit: 2, cursor: first.nextCursor });
  const third = await getForObject(db.pool, 'users', 1, { limit: 2, cursor: second.nextCursor });
  expect(ids([...first.entries, ...second.entries, ...third.entries])).toEqual(ids(all).reverse());
  expect(third.nextCursor).toBeNull();

  const oldest = await history(db.pool, { table: 'users', objectPk: 1, order: 'oldest', limit: 3 });
  expect(ids(oldest.entries)).toEqual(ids(all).slice(0, 3));
  expect(oldest.entries[0]).toMatchObject({ action: 'insert', changes: { email: [null, 'a0@x'] } });
});

test('composite keys are given as arrays, in any JSON spacing from the command line', async () => {
  await db.sql('INSERT INTO order_items VALUES (7, 2, 1), (7, 3, 1), (8, 2, 1)');
  await db.sql('UPDATE order_items SET qty = 5 WHERE order_id = 7 AND line = 2');
  const page = await getForObject(db.pool, 'order_items', [7, 2]);
  expect(page.entries.map((e) => [e.action, e.object_pk])).toEqual([['update', '[7, 2]'], ['insert', '[7, 2]']]);
  // "[7,2]" typed without the space that jsonb prints still finds the object.
  const parsed = JSON.parse('[7,2]') as number[];
  expect(ids((await getForObject(db.pool, 'order_items', parsed)).entries)).toEqual(ids(page.entries));
  const many = await getForObjects(db.pool, 'order_items', [[7, 3], [8, 2], [9, 9]]);
  expect(many.entries.map((e) => e.object_pk).sort()).toEqual(['[7, 3]', '[8, 2]']);
});

test('bigint keys beyond 2^53 match exactly, alone or in a composite key', async () => {
  await db.sql(`INSERT INTO shards VALUES (9007199254740993, 2, 'a'), (9007199254740992, 2, 'b')`);
  const composite = await getForObject(db.pool, 'shards', [9007199254740993n, 2]);
  expect(composite.entries.map((e) => e.object_pk)).toEqual(['[9007199254740993, 2]']);
  // A key part is read as a value of its column's type: the text of the number is that number.
  expect((await getForObjects(db.pool, 'shards', [['9007199254740993', '2']])).entries.map((e) => e.object_pk)).toEqual(['[9007199254740993, 2]']);
});

test('filters by table, actor, cid, transaction, action and time range', async () => {
  await withAuditSession(db.pool, { actor: 'alice', cid: 'req-1' }, async (c) => {
    await c.query(`INSERT INTO users (email) VALUES ('u1@x'), ('u2@x')`);
    await c.query('INSERT INTO order_items VALUES (1, 1, 1)');
  });
  await withAuditSession(db.pool, { actor: 'bob', cid: 'req-2' }, async (c) => {
    await c.query(`UPDATE users SET email = 'u1b@x' WHERE id = 1`);
  });
  await db.sql(`DELETE FROM users WHERE id = 2`);
  const all = await db.entries();
  expect(all).toHaveLength(5);

  expect(ids((await history(db.pool, { table: 'users' })).entries)).toEqual([all[4], all[3], all[1], all[0]].map((e) => Number(e!.id)));
  expect(ids((await history(db.pool, { actor: 'alice' })).entries)).toEqual(ids(all.slice(0, 3)).reverse());
  expect(ids((await history(db.pool, { cid: 'req-2' })).entries)).toEqual([Number(all[3]!.id)]);
  expect(ids((await history(db.pool, { txid: all[0]!.txid })).entries)).toEqual(ids(all.slice(0, 3)).reverse());
  expect(ids((await history(db.pool, { txid: BigInt(all[0]!.txid) })).entries)).toHaveLength(3);
  expect((await history(db.pool, { table: 'users', actions: ['delete', 'update'] })).entries.map((e) => e.action)).toEqual(['delete', 'update']);
  expect((await history(db.pool, { actor: 'alice', table: 'order_items' })).entries).toHaveLength(1);

  // ISO text keeps the microseconds of ts (a JavaScript Date would round them away).
  const [{ t }] = await db.sql(
    `SELECT to_char((ts + interval '1 microsecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
     FROM auditlog.log_entry WHERE id = $1`, [all[2]!.id]);
  expect(ids((await history(db.pool, { until: t })).entries)).toEqual(ids(all.slice(0, 3)).reverse());
  expect(ids((await history(db.pool, { since: t, order: 'oldest' })).entries)).toEqual(ids(all.slice(3)));
  expect((await history(db.pool, { since: '2000-01-01', until: '2000-01-02T00:00:00Z' })).entries).toEqual([]);
});

test('display: mapping names, masked values flagged, a one-line summary per entry', async () => {
  await db.sql(`INSERT INTO users (email, ssn) VALUES ('a@x', 'secret')`);
  await db.sql(`UPDATE users SET email = 'b@x', ssn = 'other' WHERE id = 1`);
  await db.sql(`DELETE FROM users WHERE id = 1`);
  const [ins, upd, del] = await describeEntries(db.pool, await db.entries());
  expect(upd!.changesDisplay).toEqual({ 'E-mail address': ['a@x', 'b@x'], ssn: ['[masked]', '[masked]'] });
  expect(upd!.fields.find((f) => f.field === 'ssn')).toMatchObject({ label: 'ssn', masked: true });
  // Fields come in the table's column order (id, email, ssn), not jsonb's (shorter names first).
  expect(upd!.summary).toBe('E-mail address: "a@x" → "b@x"; ssn: changed (masked)');
  expect(ins!.summary).toBe('created: id: 1; E-mail address: "a@x"; ssn: (masked)');
  expect(del!.summary).toBe('deleted: id: 1; E-mail address: "b@x"; ssn: (masked)');
  expect(Object.keys(ins!.changes!)).toEqual(['id', 'email', 'ssn']);
  expect(JSON.stringify([ins, upd, del])).not.toMatch(/secret|other/);
  // Without a config (e.g. the table was uninstalled) the marker alone still flags the mask.
  expect(describeEntry(upd!).fields.find((f) => f.field === 'ssn')!.masked).toBe(true);
  expect(describeEntry({ ...upd!, action: 'truncate', changes: null }).summary).toBe('table truncated');
});

test('allHistory collects every page', async () => {
  await db.sql(`INSERT INTO users (email) SELECT 'bulk' || i FROM generate_series(1, 1205) i`);
  const entries = await allHistory(db.pool, { table: 'users' });
  expect(entries).toHaveLength(1205);
  expect(new Set(entries.map((e) => e.id)).size).toBe(1205);
  expect(await allHistory(db.pool, { table: 'users' }, 10)).toHaveLength(10);
});

test('report counts by table, action and actor over [since, until)', async () => {
  await withAuditSession(db.pool, { actor: 'alice' }, async (c) => {
    await c.query(`INSERT INTO users (email) VALUES ('r1@x'), ('r2@x'), ('r3@x')`);
    await c.query(`UPDATE users SET email = 'r1b@x' WHERE id = 1`);
  });
  await db.sql('INSERT INTO order_items VALUES (1, 1, 1)');
  const r = await report(db.pool);
  expect(r.total).toBe(5);
  expect(r.byTable).toEqual([{ key: 'public.users', count: 4 }, { key: 'public.order_items', count: 1 }]);
  expect(r.byAction).toEqual([{ key: 'insert', count: 4 }, { key: 'update', count: 1 }]);
  expect(r.byActor).toEqual([{ key: 'alice', count: 4 }, { key: null, count: 1 }]);
  expect(r.until.getTime() - r.since.getTime()).toBe(30 * 24 * 3600 * 1000);
  expect((await report(db.pool, { since: '2001-01-01', until: '2001-02-01' })).total).toBe(0);
  // Bounds keep their microseconds: the last entry is in [its ts, …) and not in [its ts + 1µs, …).
  const [{ exact, after }] = await db.sql(
    `SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS exact,
            to_char((ts + interval '1 microsecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS after
     FROM auditlog.log_entry ORDER BY id DESC LIMIT 1`);
  expect((await report(db.pool, { since: exact })).total).toBe(1);
  expect((await report(db.pool, { since: after })).total).toBe(0);
  await expect(report(db.pool, { since: '2001-02-01', until: '2001-01-01' })).rejects.toThrow(/since must not be after until/);
});

test('unclear instants, unknown filters and keys without a table are refused clearly', async () => {
  for (const bad of ['2026-13-01', '2026-02-30', '01/02/2026', 'yesterday', '2026-01-01 10:00', '2026-01-01T25:00Z', '']) {
    expect(() => parseInstant(bad, 'since')).toThrow(AuditLogError);
  }
  expect(() => parseInstant('2026-01-01T10:00:00', 'at')).toThrow(/add Z or an offset/);
  expect(parseInstant('2026-01-31', 'x')).toBe('2026-01-31T00:00:00Z');
  expect(parseInstant('2026-01-31T14:00:00.123456+01:00', 'x')).toBe('2026-01-31T14:00:00.123456+01:00');
  await expect(history(db.pool, { since: 'last week' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  await expect(history(db.pool, { objectPk: 1 })).rejects.toThrow(/need the table/);
  await expect(history(db.pool, { tabel: 'users' } as never)).rejects.toThrow(/unknown history filter "tabel"/);
  await expect(history(db.pool, { limit: 0 })).rejects.toThrow(/limit/);
  await expect(history(db.pool, { cursor: 'abc' })).rejects.toThrow(/cursor/);
});
