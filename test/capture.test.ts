// What the generated triggers write, for every action and column type, checked row by row.
// The same suite runs in both capture modes: they must write the same entries.
import type { CaptureMode } from '../src/interfaces';
import { createTestDatabase, type TestDatabase } from './helpers';

describe.each<CaptureMode>(['row', 'statement'])('%s mode', (mode) => {
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase(`capture_${mode}`);
  await db.sql(`
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE TABLE users (
      id serial PRIMARY KEY,
      email text NOT NULL,
      ssn text,
      last_login timestamptz,
      updated_at timestamptz
    );
    CREATE TABLE order_items (
      order_id int, line int, qty int, price numeric(12, 2), note text,
      PRIMARY KEY (order_id, line)
    );
    CREATE TABLE kitchen_sink (
      id bigint PRIMARY KEY,
      doc jsonb, raw json, tags text[], amount numeric, at timestamptz, day date,
      feeling mood, blob bytea, big text, flag boolean, spot point, x xml
    );
    CREATE TABLE "Mixed Case" ("Key" int PRIMARY KEY, "Some Value" text);
    CREATE TABLE keyless (a int, b int);
    CREATE TABLE no_delete_log (id int PRIMARY KEY, v text);
    CREATE TABLE swap (id int PRIMARY KEY DEFERRABLE, v text);
  `);
  await db.install({
    mode,
    excludeFields: ['updated_at'],
    tables: {
      'public.users': { exclude: ['last_login'], mask: ['ssn'], snapshot: true, objectRepr: 'email' },
      'public.order_items': { include: ['qty', 'price'] },
      'public.kitchen_sink': {},
      'public."Mixed Case"': {},
      'public.keyless': { primaryKey: ['a', 'b'] },
      'public.no_delete_log': { actions: ['insert', 'update'] },
      'public.swap': {},
    },
  });
});

afterAll(() => db.drop());

beforeEach(() => db.sql('TRUNCATE auditlog.log_entry'));

test('insert writes [null, new] for every tracked column, masked where configured', async () => {
  await db.sql(`INSERT INTO users (email, ssn, last_login, updated_at) VALUES ('a@example.com', '123-45-6789', now(), now())`);
  const [e] = await db.entries();
  expect(e).toMatchObject({
    table_schema: 'public', table_name: 'users', object_pk: '1', object_repr: 'a@example.com', action: 'insert',
    changes: { id: [null, 1], email: [null, 'a@example.com'], ssn: [null, '[masked]'] },
    snapshot: { id: 1, email: 'a@example.com', ssn: '[masked]' },
  });
  expect(JSON.stringify(e)).not.toContain('123-45-6789');
});

test('update records only the changed keys as [old, new]', async () => {
  const [{ id }] = await db.sql(`INSERT INTO users (email) VALUES ('b@example.com') RETURNING id`);
  await db.sql(`UPDATE users SET email = 'c@example.com' WHERE id = $1`, [id]);
  const [, e] = await db.entries();
  expect(e!.action).toBe('update');
  expect(e!.changes).toEqual({ email: ['b@example.com', 'c@example.com'] });
  expect(e!.object_repr).toBe('c@example.com');
});

test('a no-op update, or one touching only excluded fields, writes no entry', async () => {
  const [{ id }] = await db.sql(`INSERT INTO users (email) VALUES ('d@example.com') RETURNING id`);
  await db.sql(`UPDATE users SET email = email WHERE id = $1`, [id]);
  await db.sql(`UPDATE users SET last_login = now(), updated_at = now() WHERE id = $1`, [id]);
  expect((await db.entries()).map((e) => e.action)).toEqual(['insert']);
});

test('a changed masked field shows that it changed, never its values', async () => {
  const [{ id }] = await db.sql(`INSERT INTO users (email, ssn) VALUES ('e@example.com', 'secret-1') RETURNING id`);
  await db.sql(`UPDATE users SET ssn = 'secret-2' WHERE id = $1`, [id]);
  await db.sql(`UPDATE users SET ssn = NULL WHERE id = $1`, [id]);
  const entries = await db.entries();
  expect(entries.map((e) => e.changes)).toEqual([
    expect.objectContaining({ ssn: [null, '[masked]'] }),
    { ssn: ['[masked]', '[masked]'] },
    { ssn: ['[masked]', null] },
  ]);
  expect(JSON.stringify(entries)).not.toMatch(/secret/);
});

test('delete writes [old, null] and a snapshot of the row as it was', async () => {
  const [{ id }] = await db.sql(`INSERT INTO users (email, ssn) VALUES ('f@example.com', 'x') RETURNING id`);
  await db.sql(`DELETE FROM users WHERE id = $1`, [id]);
  const [, e] = await db.entries();
  expect(e).toMatchObject({
    action: 'delete', object_pk: String(id),
    changes: { id: [id, null], email: ['f@example.com', null], ssn: ['[masked]', null] },
    snapshot: { id, email: 'f@example.com', ssn: '[masked]' },
  });
});

test('truncate writes one entry for the table', async () => {
  await db.sql(`INSERT INTO users (email) SELECT 'g' || i FROM generate_series(1, 3) i`);
  await db.sql('TRUNCATE auditlog.log_entry');
  await db.sql('TRUNCATE users');
  const entries = await db.entries();
  expect(entries).toHaveLength(1);
  expect(entries[0]).toMatchObject({ action: 'truncate', table_name: 'users', object_pk: null, changes: null });
});

test('composite primary keys are a JSON array; include limits the tracked columns', async () => {
  await db.sql(`INSERT INTO order_items VALUES (7, 2, 1, 9.99, 'gift')`);
  await db.sql(`UPDATE order_items SET note = 'not tracked' WHERE order_id = 7`);
  await db.sql(`UPDATE order_items SET qty = 3 WHERE order_id = 7`);
  const entries = await db.entries();
  expect(entries.map((e) => [e.action, e.object_pk, e.changes])).toEqual([
    ['insert', '[7, 2]', { qty: [null, 1], price: [null, 9.99] }],
    ['update', '[7, 2]', { qty: [1, 3] }],
  ]);
});

test('a table without primary key uses the configured primaryKey columns', async () => {
  await db.sql('INSERT INTO keyless VALUES (1, 2)');
  expect((await db.entries())[0]!.object_pk).toBe('[1, 2]');
});

test('actions limits what is captured', async () => {
  await db.sql(`INSERT INTO no_delete_log VALUES (1, 'a')`);
  await db.sql('DELETE FROM no_delete_log');
  await db.sql('TRUNCATE no_delete_log');
  expect((await db.entries()).map((e) => e.action)).toEqual(['insert']);
});

test('quoted, mixed-case and spaced identifiers are captured', async () => {
  await db.sql(`INSERT INTO "Mixed Case" VALUES (1, 'v')`);
  expect((await db.entries())[0]).toMatchObject({ table_name: 'Mixed Case', object_pk: '1', changes: { Key: [null, 1], 'Some Value': [null, 'v'] } });
});

test('every column type round-trips faithfully through changes', async () => {
  const big = 'x'.repeat(3_000_000); // TOASTed
  await db.sql(
    `INSERT INTO kitchen_sink VALUES (1, $1, $2, $3, $4, $5, $6, 'sad', $7, $8, NULL, '(1,2)', '<a>1</a>')`,
    ['{"nested": {"k": null, "arr": [1, "two", null]}, "n": 1.50}', '{"b": 2,  "a": 1}', ['a', null, 'c,"d"'],
      '12345678901234567890.123456789', '2026-01-02T03:04:05.123456Z', '2024-02-29', Buffer.from([0, 1, 254, 255]), big],
  );
  // Compare in SQL, where no JavaScript number or date conversion can hide a difference.
  const [check] = await db.sql(`
    SELECT (changes->'doc'->>1)::jsonb = k.doc AS doc,
           (changes->'raw'->>1)::jsonb = k.raw::jsonb AS raw,
           ARRAY(SELECT jsonb_array_elements_text(changes->'tags'->1)) IS NOT DISTINCT FROM k.tags AS tags,
           (changes->'amount'->>1)::numeric = k.amount AS amount,
           (changes->'at'->>1)::timestamptz = k.at AS at,
           (changes->'day'->>1)::date = k.day AS day,
           (changes->'feeling'->>1)::mood = k.feeling AS feeling,
           decode(substr(changes->'blob'->>1, 3), 'hex') = k.blob AS blob,
           changes->'big'->>1 = k.big AS big,
           changes->'flag' = '[null, null]'::jsonb AS flag_null,
           (changes->'spot'->>1)::point ~= k.spot AS spot,
           changes->'x'->>1 = k.x::text AS x
    FROM auditlog.log_entry, kitchen_sink k WHERE action = 'insert' AND table_name = 'kitchen_sink'`);
  expect(check).toEqual({
    doc: true, raw: true, tags: true, amount: true, at: true, day: true, feeling: true, blob: true,
    big: true, flag_null: true, spot: true, x: true,
  });
  // Inner nulls of a jsonb value survive (no stripping of null-valued keys).
  const [e] = await db.entries();
  expect((e!.changes as any).doc[1]).toEqual({ nested: { k: null, arr: [1, 'two', null] }, n: 1.5 });
});

test('json, xml and geometric columns are compared without an equality operator', async () => {
  await db.sql(`INSERT INTO kitchen_sink (id, raw, spot, x) VALUES (2, '{"a": 1}', '(0,0)', '<a/>')`);
  await db.sql(`UPDATE kitchen_sink SET raw = '{"a":1}' WHERE id = 2`); // same json value, other text
  await db.sql(`UPDATE kitchen_sink SET raw = '{"a": 2}', spot = '(1,1)', x = '<b/>' WHERE id = 2`);
  const entries = await db.entries();
  expect(entries.map((e) => e.action)).toEqual(['insert', 'update']);
  expect(entries[1]!.changes).toEqual({ raw: [{ a: 1 }, { a: 2 }], spot: ['(0,0)', '(1,1)'], x: ['<a/>', '<b/>'] });
});

test('an update that changes the primary key is logged under the new key, with the key change', async () => {
  await db.sql(`INSERT INTO kitchen_sink (id) VALUES (10)`);
  await db.sql(`UPDATE kitchen_sink SET id = 11 WHERE id = 10`);
  const [, e] = await db.entries();
  expect(e).toMatchObject({ object_pk: '11', changes: { id: [10, 11] } });
});

test('a statement that shifts or swaps primary keys pairs each row with its own old version', async () => {
  await db.sql(`INSERT INTO swap VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
  await db.sql('TRUNCATE auditlog.log_entry');
  await db.sql('UPDATE swap SET id = CASE id WHEN 1 THEN 2 WHEN 2 THEN 1 ELSE id END'); // a swap: 3 is untouched
  await db.sql(`UPDATE swap SET id = id + 10, v = v || '!' WHERE id = 3`);
  const entries = await db.entries();
  expect(entries.map((e) => [e.object_pk, e.changes]).sort()).toEqual([
    ['1', { id: [2, 1] }],
    ['13', { id: [3, 13], v: ['three', 'three!'] }],
    ['2', { id: [1, 2] }],
  ]);
});

test('entries record the context, db_user and application_name; none without context', async () => {
  await db.withClient(async (c) => {
    await c.query(`SET application_name = 'billing-worker'`);
    await c.query('BEGIN');
    await c.query(`SELECT set_config('auditlog.actor', 'user:42', true), set_config('auditlog.cid', 'req-1', true),
                          set_config('auditlog.remote_addr', '10.1.2.3', true), set_config('auditlog.data', '{"reason": "ticket 7"}', true),
                          set_config('auditlog.tenant', 't1', true)`);
    await c.query(`INSERT INTO users (email) VALUES ('ctx@example.com')`);
    await c.query('COMMIT');
    await c.query(`INSERT INTO users (email) VALUES ('plain@example.com')`);
  });
  const [withCtx, plain] = await db.entries();
  expect(withCtx).toMatchObject({
    actor: 'user:42', cid: 'req-1', remote_addr: '10.1.2.3', additional_data: { reason: 'ticket 7' }, tenant_id: 't1',
    application_name: 'billing-worker',
  });
  expect(withCtx!.db_user).toBeTruthy();
  expect(plain).toMatchObject({ actor: null, cid: null, remote_addr: null, additional_data: null, tenant_id: null, application_name: 'billing-worker' });
});

test('db_user is the role that wrote, not the owner of the SECURITY DEFINER trigger', async () => {
  await db.sql(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'auditlog_test_writer') THEN CREATE ROLE auditlog_test_writer; END IF; END $$`);
  await db.sql('GRANT INSERT, SELECT ON users TO auditlog_test_writer; GRANT USAGE ON SEQUENCE users_id_seq TO auditlog_test_writer');
  await db.withClient(async (c) => {
    await c.query('SET ROLE auditlog_test_writer');
    await c.query(`INSERT INTO users (email) VALUES ('role@example.com')`);
  });
  expect((await db.entries())[0]!.db_user).toBe('auditlog_test_writer');
});

test('malformed context settings never fail the write', async () => {
  await db.withClient(async (c) => {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('auditlog.remote_addr', 'not-an-ip', true), set_config('auditlog.data', '{oops', true)`);
    await c.query(`INSERT INTO users (email) VALUES ('bad-ctx@example.com')`);
    await c.query('COMMIT');
  });
  const [e] = await db.entries();
  expect(e).toMatchObject({ remote_addr: null, additional_data: '{oops' });
});

test.each([
  ['a valid address beside data that is not JSON', '10.9.8.7', '{oops', '10.9.8.7', '{oops'],
  ['an address that is not one beside valid data', 'not-an-ip', '{"route": "/x"}', null, { route: '/x' }],
  ['both valid', '2001:db8::7', '[1, "a"]', '2001:db8::7', [1, 'a']],
  ['only data', '', '"just text"', null, 'just text'],
])('context: %s is stored as each value allows, in one write and the next', async (_case, addr, data, storedAddr, storedData) => {
  await db.withClient(async (c) => {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('auditlog.remote_addr', $1, true), set_config('auditlog.data', $2, true)`, [addr, data]);
    await c.query(`INSERT INTO users (email) VALUES ('ctx-1@example.com')`);
    await c.query(`UPDATE users SET email = 'ctx-2@example.com' WHERE email = 'ctx-1@example.com'`);
    await c.query('COMMIT');
  });
  const entries = await db.entries();
  expect(entries.map((e) => [e.action, e.remote_addr, e.additional_data])).toEqual([
    ['insert', storedAddr, storedData], ['update', storedAddr, storedData],
  ]);
});

test('a rolled-back write leaves no entry', async () => {
  await db.withClient(async (c) => {
    await c.query('BEGIN');
    await c.query(`INSERT INTO users (email) VALUES ('gone@example.com')`);
    await c.query('ROLLBACK');
  });
  expect(await db.entries()).toEqual([]);
});

test('entries of one transaction share its txid and timestamp', async () => {
  await db.withClient(async (c) => {
    await c.query('BEGIN');
    await c.query(`INSERT INTO users (email) VALUES ('t1@example.com')`);
    await c.query(`INSERT INTO order_items VALUES (1, 1, 1, 1, '')`);
    await c.query('COMMIT');
  });
  const [a, b] = await db.entries();
  expect(a!.txid).toBe(b!.txid);
  expect(a!.ts).toEqual(b!.ts);
});
});
