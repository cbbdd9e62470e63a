// What a read replica can serve: every read of the history API runs in a read-only session
// (default_transaction_read_only, as on a hot standby), so history, time travel, display and
// reports can be pointed at a replica. Writers of the log (revert, logEvent, flush, verify's
// seal, named subscribers' cursors) need the primary.
import { Pool } from 'pg';
import { describeEntries, getEntry, getForObject, history, report, stateAt } from '../src/history';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;
let readOnly: Pool;

beforeAll(async () => {
  db = await createTestDatabase('replica_reads');
  await db.sql(`CREATE TABLE users (id int PRIMARY KEY, email text)`);
  await db.install({ tables: { 'public.users': { mapping: { email: 'E-mail' } } } });
  await db.sql(`INSERT INTO users VALUES (1, 'a@example.com'); UPDATE users SET email = 'b@example.com'`);
  const u = new URL(db.url);
  u.searchParams.set('options', '-c default_transaction_read_only=on');
  readOnly = new Pool({ connectionString: u.toString(), max: 2 });
});

afterAll(async () => {
  await readOnly?.end();
  await db?.drop();
});

test('the session really is read-only', async () => {
  await expect(readOnly.query(`INSERT INTO users VALUES (2, 'c')`)).rejects.toMatchObject({ code: '25006' });
});

test('history, time travel, display and report run in a read-only session', async () => {
  const page = await history(readOnly, { table: 'users', objectPk: 1 });
  expect(page.entries.map((e) => e.action)).toEqual(['update', 'insert']);
  expect((await getForObject(readOnly, 'users', 1)).entries).toHaveLength(2);
  expect(await getEntry(readOnly, page.entries[0]!.id)).toMatchObject({ action: 'update' });
  expect(await stateAt(readOnly, 'users', 1, new Date())).toEqual({ id: 1, email: 'b@example.com' });
  const shown = await describeEntries(readOnly, page.entries);
  expect(JSON.stringify(shown)).toContain('E-mail');
  expect((await report(readOnly, {})).total).toBeGreaterThanOrEqual(2);
});
