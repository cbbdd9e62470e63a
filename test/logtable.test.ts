// Per-table logs: "logTable" routes a table's entries to its own table in the audit schema (a
// partition of log_entry), so history, events, verify, report and flush read across all log
// tables unchanged; existing entries of that table move there without changing.
import { flush, getForObject, install, report, subscribe } from '../src';
import type { AuditConfig, LogEntry } from '../src/interfaces';
import { createTestDatabase, verifySealed, type TestDatabase } from './helpers';

let db: TestDatabase;

const shared: AuditConfig = { tables: { 'public.users': {}, 'public.notes': {} }, tamperEvidence: true };
const split: AuditConfig = {
  tables: { 'public.users': { logTable: 'users_log' }, 'public.notes': {} },
  tamperEvidence: true,
  partitioning: { interval: 'day' },
};

beforeAll(async () => {
  db = await createTestDatabase('logtable');
  await db.sql('CREATE TABLE users (id int PRIMARY KEY, email text); CREATE TABLE notes (id int PRIMARY KEY, body text)');
});

afterAll(() => db.drop());

const where = async (id: string) =>
  (await db.sql(`SELECT tableoid::regclass::text AS t FROM auditlog.log_entry WHERE id = $1`, [id]))[0].t as string;


test('a table gets its own log: its entries move there unchanged, readers see one log', async () => {
  await db.install(shared);
  for (let i = 1; i <= 5; i++) {
    await db.sql(`INSERT INTO users VALUES ($1::int, 'u' || $1::text || '@x'); INSERT INTO notes VALUES ($1::int, 'n')`.replace(/\$1/g, String(i)));
  }
  expect(await verifySealed(db, shared)).toMatchObject({ intact: true });
  const before = await db.entries();

  await db.install(split);
  expect(await db.entries()).toEqual(before);
  const userEntry = before.find((e) => e.table_name === 'users')!;
  const noteEntry = before.find((e) => e.table_name === 'notes')!;
  // Moved into the new log (its default partition), then by install into the day's partition.
  expect(await where(userEntry.id)).toMatch(/^auditlog\.users_log_p\d{8}$/);
  expect(await where(noteEntry.id)).toBe('auditlog.log_entry_legacy');

  // New writes are routed: users to its log's partition of today, notes to the shared log.
  await db.sql(`UPDATE users SET email = 'new@x' WHERE id = 1; UPDATE notes SET body = 'changed' WHERE id = 1`);
  const [u] = await db.entries(`table_name = 'users' AND action = 'update'`);
  const [n] = await db.entries(`table_name = 'notes' AND action = 'update'`);
  expect(await where(u!.id)).toMatch(/^auditlog\.users_log_p\d{8}$/);
  expect(await where(n!.id)).toMatch(/^auditlog\.log_entry_(legacy|p\d{8})$/);

  // History, report, verify read across both logs.
  const page = await getForObject(db.pool, 'public.users', 1);
  expect(page.entries.map((e) => e.action)).toEqual(['update', 'insert']);
  const r = await report(db.pool, {});
  expect(r.byTable).toEqual(expect.arrayContaining([{ key: 'public.users', count: 6 }, { key: 'public.notes', count: 6 }]));
  expect(await verifySealed(db, split)).toMatchObject({ intact: true, problems: [] });

  // A durable subscriber from the beginning receives every entry of both logs, once each.
  const seen: LogEntry[] = [];
  const total = before.length + 2;
  const sub = await subscribe({ connectionString: db.url, name: 'logtable-test', startFrom: 'beginning', log: () => undefined }, (batch) => {
    seen.push(...batch);
  });
  for (let i = 0; seen.length < total && i < 200; i++) await new Promise((res) => setTimeout(res, 50));
  await sub.close();
  expect(seen.map((e) => e.id).sort()).toEqual((await db.entries()).map((e) => e.id).sort());

  // The table's own log can be retained on its own: flush --table drops its partitions only.
  const future = new Date(Date.now() + 40 * 86400_000).toISOString().slice(0, 10);
  const flushed = await flush(db.pool, { table: 'public.users', beforeDate: future });
  expect(flushed.deleted).toBe(6);
  expect(await db.entries(`table_name = 'users' AND action <> 'flush'`)).toEqual([]);
  expect((await db.entries(`table_name = 'notes'`)).length).toBe(6);
  expect(await verifySealed(db, split)).toMatchObject({ intact: true, problems: [] });

  // Installing again changes nothing.
  const lines: string[] = [];
  await db.withClient((c) => install(c, split, { log: (l) => lines.push(l) }));
  expect(lines.join('\n')).not.toMatch(/partitioned/);
});
