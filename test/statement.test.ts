// Statement-level capture specifics: bulk statements, and PL/pgSQL's cached plans.
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('statement');
  await db.sql(`CREATE TABLE items (id int PRIMARY KEY, a int, b text);
                INSERT INTO items SELECT i, i, 'b' || i FROM generate_series(1, 20000) i;`);
  await db.install({ mode: 'statement', tables: { 'public.items': {} } });
});

afterAll(() => db.drop());

test('a plan cached after one-row statements does not make a large statement quadratic', async () => {
  // The transition tables have no statistics; a plan built for one row and reused for 20,000
  // rows would pair them by nested loop (seconds to minutes). The capture function forbids it.
  await db.withClient(async (c) => {
    for (let id = 1; id <= 8; id++) await c.query('UPDATE items SET a = a + 1 WHERE id = $1', [id]);
    await c.query(`SET statement_timeout = '10s'`);
    const r = await c.query('UPDATE items SET a = a + 1');
    expect(r.rowCount).toBe(20000);
  });
  expect((await db.sql(`SELECT count(*)::int AS n FROM auditlog.log_entry WHERE action = 'update'`))[0].n).toBe(20008);
});

test('one statement writes one entry per row, all with the context of its transaction', async () => {
  await db.sql('TRUNCATE auditlog.log_entry');
  await db.withClient(async (c) => {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('auditlog.actor', 'importer', true)`);
    await c.query(`UPDATE items SET b = upper(b) WHERE id <= 1000`);
    await c.query(`UPDATE items SET b = b WHERE id <= 1000`); // a no-op for every row: no entries
    await c.query('COMMIT');
  });
  const [stats] = await db.sql(`SELECT count(*)::int AS n, count(DISTINCT object_pk)::int AS objects,
                                       bool_and(actor = 'importer') AS actors, bool_and(changes ? 'b' AND NOT changes ? 'a') AS diffs
                                FROM auditlog.log_entry`);
  expect(stats).toEqual({ n: 1000, objects: 1000, actors: true, diffs: true });
});

test('an UPDATE of no row, of one row and of several rows writes the same entries a row trigger would', async () => {
  // One-row UPDATEs take a path of their own (no pairing needed); none writes nothing.
  await db.sql(`UPDATE items SET a = id, b = 'b' || id WHERE id <= 10`);
  await db.sql('TRUNCATE auditlog.log_entry');
  await db.sql(`UPDATE items SET a = 0 WHERE id = 0`); // no row
  await db.sql(`UPDATE items SET a = a WHERE id = 5`); // one row, nothing changed
  await db.sql(`UPDATE items SET a = -5, b = NULL WHERE id = 5`); // one row
  await db.sql(`UPDATE items SET id = 30001 WHERE id = 6`); // one row, key changed
  await db.sql(`UPDATE items SET a = -7 WHERE id IN (7, 8)`); // two rows
  const rows = await db.sql(`SELECT object_pk, action, changes FROM auditlog.log_entry ORDER BY id`);
  expect(rows).toEqual([
    { object_pk: '5', action: 'update', changes: { a: [5, -5], b: ['b5', null] } },
    { object_pk: '30001', action: 'update', changes: { id: [6, 30001] } },
    { object_pk: '7', action: 'update', changes: { a: [7, -7] } },
    { object_pk: '8', action: 'update', changes: { a: [8, -7] } },
  ]);
});
