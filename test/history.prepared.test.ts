// History reads are named prepared statements: each connection plans a lookup once (on a
// partitioned log planning is most of a lookup's cost), a later migration that adds a column
// does not break a running application, and AUDITLOG_PREPARED_STATEMENTS=off turns them off.
import { getEntry, getForObject, history, report, stateAt } from '../src';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('history_prepared');
  await db.sql('CREATE TABLE items (id int PRIMARY KEY, qty int)');
  await db.install({ tables: { 'public.items': {} }, partitioning: { interval: 'month' } });
  await db.sql('INSERT INTO items SELECT g, g FROM generate_series(1, 20) g');
  await db.sql('UPDATE items SET qty = qty + 1');
});

afterAll(() => db.drop());

const ownStatements = `SELECT name, generic_plans::int AS generic FROM pg_prepared_statements WHERE name LIKE 'auditlog\\_%'`;

test('one connection prepares each lookup once and settles on a generic plan', async () => {
  await db.withClient(async (client) => {
    for (let k = 1; k <= 8; k++) {
      const page = await getForObject(client, 'public.items', k);
      expect(page.entries.map((e) => e.action)).toEqual(['update', 'insert']);
    }
    const { rows } = await client.query<{ name: string; generic: number }>(ownStatements);
    expect(rows.length).toBeGreaterThan(0);
    // The page query ran 8 times with different keys: PostgreSQL switched to its generic plan.
    expect(Math.max(...rows.map((r) => r.generic))).toBeGreaterThan(0);
    const before = rows.length;
    for (let k = 1; k <= 3; k++) await getForObject(client, 'public.items', k);
    expect((await client.query(ownStatements)).rows).toHaveLength(before);
  });
});

test('reads bounded in time and reads of a table alone are planned for their values, never prepared', async () => {
  // A generic plan of a time window is costed for every partition (it came out parallel on
  // 50,000,000 entries); one of a table alone cannot know whether the table is rare.
  await db.withClient(async (client) => {
    const hour = { since: new Date(Date.now() - 3600_000), until: new Date(Date.now() + 3600_000) };
    for (let i = 0; i < 7; i++) {
      expect((await history(client, hour)).entries.length).toBeGreaterThan(0);
      await history(client, { since: hour.since, actor: 'nobody' });
      await history(client, { table: 'public.items', limit: 5 });
      await report(client, hour);
    }
    const { rows } = await client.query<{ statement: string }>(
      `SELECT statement FROM pg_prepared_statements WHERE name LIKE 'auditlog\\_%'`);
    expect(rows.filter((r) => /\bts\s*[<>]|table_name = \$1\s+AND table_schema = \$2\s+ORDER/.test(r.statement))).toEqual([]);
  });
});

test('prepared reads keep working on a connection open across a migration that adds a column', async () => {
  await db.withClient(async (client) => {
    const firstId = (await getForObject(client, 'public.items', 1)).entries[0]!.id;
    for (let i = 0; i < 6; i++) {
      await getForObject(client, 'public.items', 2);
      await getEntry(client, firstId);
      await history(client, { actor: 'nobody' });
      await stateAt(client, 'public.items', 3, new Date());
      await report(client, { since: new Date(Date.now() - 3600_000) });
    }
    await db.sql('ALTER TABLE auditlog.log_entry ADD COLUMN added_later text');
    try {
      expect((await getForObject(client, 'public.items', 2)).entries).toHaveLength(2);
      expect((await getEntry(client, firstId))?.id).toBe(firstId);
      expect((await history(client, { actor: 'nobody' })).entries).toEqual([]);
      expect(await stateAt(client, 'public.items', 3, new Date())).toEqual({ id: 3, qty: 4 });
      expect((await report(client, { since: new Date(Date.now() - 3600_000) })).total).toBe(40);
    } finally {
      await db.sql('ALTER TABLE auditlog.log_entry DROP COLUMN added_later');
    }
  });
});

test('AUDITLOG_PREPARED_STATEMENTS=off sends every read unnamed', async () => {
  process.env.AUDITLOG_PREPARED_STATEMENTS = 'off';
  try {
    await db.withClient(async (client) => {
      await getForObject(client, 'public.items', 1);
      await history(client, { since: new Date(Date.now() - 3600_000), until: new Date(Date.now() + 3600_000) });
      await report(client);
      expect((await client.query(ownStatements)).rows).toEqual([]);
    });
  } finally {
    delete process.env.AUDITLOG_PREPARED_STATEMENTS;
  }
});
