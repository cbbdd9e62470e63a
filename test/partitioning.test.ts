// A time-partitioned log: install converts an existing log without losing or changing an
// entry (with writers running, with tamper evidence on), maintain creates partitions ahead,
// moves strays out of the default partition, and drops whole partitions past retention while
// verify stays intact; flush --before-date drops partitions where it can.
import { Pool } from 'pg';
import { flush, getForObject, history, install, maintain, report, stateAt, verify } from '../src';
import type { AuditConfig } from '../src/interfaces';
import { createTestDatabase, verifySealed, type TestDatabase } from './helpers';

let db: TestDatabase;

const plain: AuditConfig = { tables: { 'public.notes': {} }, tamperEvidence: true };
const monthly: AuditConfig = { ...plain, partitioning: { interval: 'month' }, retention: '13 months' };

beforeAll(async () => {
  db = await createTestDatabase('partitioning');
  await db.sql('CREATE TABLE notes (id int PRIMARY KEY, body text)');
});

afterAll(() => db.drop());

const partitions = async () => (await db.sql(
  `SELECT c.relname AS name, pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
   FROM pg_catalog.pg_partition_tree('auditlog.log_entry') t JOIN pg_catalog.pg_class c ON c.oid = t.relid
   WHERE t.level > 0 ORDER BY 1`)) as { name: string; bound: string }[];


test('install converts a populated, sealed log while writers keep writing; nothing lost or changed', async () => {
  await db.install(plain);
  for (let i = 1; i <= 50; i++) await db.sql(`INSERT INTO notes VALUES ($1::int, 'n' || $1::text)`, [i]);
  await db.sql(`UPDATE notes SET body = body || '!' WHERE id <= 10`);
  expect(await verifySealed(db, plain)).toMatchObject({ intact: true, sealedTotal: 60 });
  const before = await db.entries();

  // Eight writers, each committing single-row updates as fast as it can, through the conversion.
  const pool = new Pool({ connectionString: db.url, max: 8 });
  let stop = false;
  let committed = 0;
  const failures: unknown[] = [];
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let k = 0; !stop; k++) {
      try {
        await pool.query(`UPDATE notes SET body = $2 WHERE id = $1`, [w + 1, `w${w}-${k}`]);
        committed++;
      } catch (err) {
        failures.push(err);
      }
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  const log: string[] = [];
  await db.withClient((c) => install(c, monthly, { log: (l) => log.push(l) }));
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await Promise.all(writers);
  await pool.end();

  expect(failures).toEqual([]);
  expect(log.join('\n')).toMatch(/validated log_entry_partition_bound/);
  const [{ kind }] = await db.sql(`SELECT relkind AS kind FROM pg_class WHERE oid = 'auditlog.log_entry'::regclass`);
  expect(kind).toBe('p');
  const names = (await partitions()).map((p) => p.name);
  expect(names).toEqual(expect.arrayContaining(['log_entry_legacy', 'log_entry_default']));
  // The legacy partition takes writes until two months ahead; partitions of their own follow it.
  expect(names.filter((n) => /^log_entry_p\d{8}$/.test(n)).length).toBeGreaterThanOrEqual(2);

  const after = await db.entries();
  // Every entry from before is there, byte for byte; every committed write has its entry.
  expect(after.slice(0, before.length)).toEqual(before);
  expect(after.length).toBe(before.length + committed);
  expect(new Set(after.map((e) => e.id)).size).toBe(after.length);
  expect(await db.sql(`SELECT 1 FROM pg_constraint WHERE conname = 'log_entry_partition_bound'`)).toEqual([]);

  const report1 = await verifySealed(db, monthly);
  expect(report1.problems).toEqual([]);
  expect(report1.intact).toBe(true);

  // Ids continue from the old sequence; the history API reads across partitions.
  await db.sql(`INSERT INTO notes VALUES (1000, 'new')`);
  const [last] = await db.entries('object_pk = $1', ['1000']);
  expect(BigInt(last!.id)).toBeGreaterThan(BigInt(after[after.length - 1]!.id));
  const page = await getForObject(db.pool, 'public.notes', 1, { limit: 1000 });
  expect(page.entries.length).toBeGreaterThan(2);
  expect(await stateAt(db.pool, 'public.notes', 1000, new Date(Date.now() + 1000))).toMatchObject({ id: 1000, body: 'new' });
  expect((await report(db.pool, {})).total).toBe(after.length + 1);

  // Install again: nothing to convert, nothing changes.
  const again: string[] = [];
  await db.withClient((c) => install(c, monthly, { log: (l) => again.push(l) }));
  expect(again.join('\n')).not.toMatch(/partitioned|created partition/);
});

test('a default partition catches a stray entry; maintain moves it into its own partition unchanged', async () => {
  // An entry far in the future (a wrong clock): no partition for it, yet the write succeeds.
  await db.sql(`INSERT INTO auditlog.log_entry (ts, action, db_user) VALUES ('2099-03-04T05:06:07Z', 'clock_skew', 'x')`);
  const [stray] = await db.entries(`action = 'clock_skew'`);
  expect((await db.sql(`SELECT tableoid::regclass::text AS t FROM auditlog.log_entry WHERE id = $1`, [stray!.id]))[0].t)
    .toBe('auditlog.log_entry_default');
  const result = await db.withClient((c) => maintain(c, monthly));
  expect(result.created).toContain('log_entry_p20990301');
  expect(result.moved).toBe(1);
  const [moved] = await db.entries(`action = 'clock_skew'`);
  expect(moved).toEqual(stray);
  expect((await db.sql(`SELECT tableoid::regclass::text AS t FROM auditlog.log_entry WHERE id = $1`, [stray!.id]))[0].t)
    .toBe('auditlog.log_entry_p20990301');
  // Idempotent, and two runs at once do not race.
  const [a, b] = await Promise.all([db.withClient((c) => maintain(c, monthly)), db.withClient((c) => maintain(c, monthly))]);
  expect([...a.created, ...b.created]).toEqual([]);
  await db.sql(`DELETE FROM auditlog.log_entry WHERE action = 'clock_skew'`);
  await db.sql(`DROP TABLE auditlog.log_entry_p20990301`);
});

test('retention drops whole partitions; verify checks from the oldest kept entry and still sees tampering', async () => {
  const entries = await db.entries();
  const sealed = await verifySealed(db, monthly);
  expect(sealed.intact).toBe(true);
  // Sixteen months from now the legacy partition (up to two months ahead of today) is past
  // the 13 months of retention.
  const later = new Date();
  later.setUTCMonth(later.getUTCMonth() + 16);
  const r = await db.withClient((c) => maintain(c, monthly, { now: later }));
  expect(r.dropped).toContain('log_entry_legacy');
  expect(r.droppedEntries).toBe(entries.length);
  expect(await db.entries(`action <> 'retention'`)).toEqual([]);
  const [recorded] = await db.sql(`SELECT sum(entries)::int AS n FROM auditlog.dropped_range WHERE reason = 'retention'`);
  expect(recorded.n).toBe(entries.length);
  expect((await db.entries(`action = 'retention'`)).length).toBe(r.dropped.length);

  await db.sql(`INSERT INTO notes VALUES (2000, 'kept')`);
  const ok = await verifySealed(db, monthly);
  expect(ok.problems).toEqual([]);
  expect(ok.intact).toBe(true);
  expect(ok.droppedEntries).toBe(entries.length);

  // Tampering with a kept entry is still found.
  const [kept] = await db.entries(`object_pk = '2000'`);
  await db.sql(`UPDATE auditlog.log_entry SET actor = 'mallory' WHERE id = $1`, [kept!.id]);
  const bad = await db.withClient((c) => verify(c, monthly));
  expect(bad.intact).toBe(false);
  expect(bad.problems.map((p) => p.entryId)).toContain(kept!.id);
  await db.sql(`UPDATE auditlog.log_entry SET actor = NULL WHERE id = $1`, [kept!.id]);
});

test('flush --before-date drops the partitions wholly before the date and deletes inside the boundary one', async () => {
  // Entries of three past months, written with their own ts (as a migration from elsewhere would).
  await db.sql(`SELECT auditlog.log_event('import')`);
  await db.sql(`INSERT INTO auditlog.log_entry (ts, action, db_user)
                SELECT t, 'old', 'x' FROM generate_series(timestamptz '2025-01-01', '2025-03-31', interval '1 day') AS t`);
  // (With the 13 months of retention, maintain would drop them right away.)
  const made = await db.withClient((c) => maintain(c, { ...plain, partitioning: { interval: 'month' } }));
  expect(made.created).toEqual(expect.arrayContaining(['log_entry_p20250101', 'log_entry_p20250201', 'log_entry_p20250301']));
  const result = await flush(db.pool, { beforeDate: '2025-03-15' });
  expect(result.deleted).toBe(31 + 28 + 14);
  const names = (await partitions()).map((p) => p.name);
  expect(names).not.toContain('log_entry_p20250101');
  expect(names).not.toContain('log_entry_p20250201');
  expect(names).toContain('log_entry_p20250301');
  expect((await db.entries(`action = 'old'`)).length).toBe(17);
  expect(await verifySealed(db, monthly)).toMatchObject({ intact: true, problems: [] });
  // And history paging still works over many partitions.
  const page = await history(db.pool, { actions: ['old'], limit: 5, order: 'oldest' });
  expect(page.entries[0]!.ts.toISOString()).toBe('2025-03-15T00:00:00.000Z');
});

test('config errors name the key and the fix', async () => {
  await expect(db.withClient((c) => install(c, { ...plain, partitioning: { interval: 'hour' as 'day' } })))
    .rejects.toThrow(/partitioning.interval must be "day", "week" or "month"/);
  await expect(db.withClient((c) => install(c, { ...plain, partitioning: { interval: 'day', retention: 'forever' } })))
    .rejects.toThrow(/partitioning.retention must read like "13 months"/);
  await expect(db.withClient((c) => install(c, { ...plain, retention: '13 months' } as AuditConfig)))
    .rejects.toThrow(/"retention" drops whole partitions of the log: it needs "partitioning"/);
  await expect(db.withClient((c) => install(c, { tables: { 'public.notes': { logTable: 'Users Log' } } })))
    .rejects.toThrow(/tables\["public.notes"\].logTable must be a lower-case table name/);
});
