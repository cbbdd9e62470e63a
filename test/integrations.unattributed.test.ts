// unattributed: 'allow' | 'warn' | 'reject', in both capture modes.
import { validateConfig } from '../src/config/validate';
import { renderInstall } from '../src/install';
import { withAuditSession } from '../src/session';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('int_unattributed');
  await db.sql(`CREATE TABLE s_reject (id int PRIMARY KEY, v text);
                CREATE TABLE r_reject (id int PRIMARY KEY, v text);
                CREATE TABLE s_warn (id int PRIMARY KEY, v text);
                CREATE TABLE r_warn (id int PRIMARY KEY, v text);
                CREATE TABLE open_table (id int PRIMARY KEY, v text)`);
  await db.install({
    unattributed: 'reject',
    tables: {
      'public.s_reject': { mode: 'statement' }, 'public.r_reject': { mode: 'row' },
      'public.s_warn': { mode: 'statement', unattributed: 'warn' }, 'public.r_warn': { mode: 'row', unattributed: 'warn' },
      'public.open_table': { unattributed: 'allow' },
    },
  });
});
afterAll(() => db.drop());

describe.each(['s', 'r'])('%s mode', (m) => {
  const reject = `${m}_reject`;
  const warn = `${m}_warn`;
  it('reject: a write without an actor fails inside its transaction, naming the table', async () => {
    const err = await db.sql(`INSERT INTO ${reject} VALUES (1, 'x')`).catch((e) => e);
    expect(err.message).toBe(`pg-auditlog: write to public.${reject} rejected: no actor is set (unattributed: reject)`);
    expect(err.hint).toMatch(/SET LOCAL auditlog.actor/);
    expect(await db.sql(`SELECT * FROM ${reject}`)).toEqual([]);
    // The same statement with an actor (session API, or SET LOCAL as a migration would) passes.
    await withAuditSession(db.pool, { actor: 'alice' }, (c) => c.query(`INSERT INTO ${reject} VALUES (1, 'x')`));
    await db.sql(`BEGIN; SET LOCAL auditlog.actor = 'migration:0042'; UPDATE ${reject} SET v = 'y'; COMMIT`);
    const entries = await db.entries('table_name = $1', [reject]);
    expect(entries.map((e) => e.actor)).toEqual(['alice', 'migration:0042']);
    // A superuser is not exempt (the test connection is one).
    await expect(db.sql(`DELETE FROM ${reject}`)).rejects.toThrow(/rejected: no actor/);
    // A statement that writes no row writes no entry and is not refused.
    await db.sql(`UPDATE ${reject} SET v = 'z' WHERE false`);
  });

  it('warn: the write succeeds and PostgreSQL sends a WARNING naming the table', async () => {
    const notices = await db.withClient(async (c) => {
      const seen: Array<{ severity?: string; message?: string }> = [];
      c.on('notice', (n) => seen.push({ severity: (n as any).severity, message: n.message }));
      await c.query(`INSERT INTO ${warn} VALUES (1, 'x')`);
      await c.query(`BEGIN; SET LOCAL auditlog.actor = 'bob'; UPDATE ${warn} SET v = 'y'; COMMIT`);
      return seen;
    });
    expect(notices).toEqual([{ severity: 'WARNING', message: `pg-auditlog: write to public.${warn} without an actor (unattributed: warn)` }]);
    expect((await db.entries('table_name = $1', [warn])).map((e) => e.actor)).toEqual([null, 'bob']);
  });
});

it('allow per table over a top-level reject; allow generates nothing', async () => {
  await db.sql(`INSERT INTO open_table VALUES (1, 'x')`);
  expect((await db.entries(`table_name = 'open_table'`)).map((e) => e.actor)).toEqual([null]);
  const sql = await db.withClient((c) => renderInstall(c, { tables: { 'public.open_table': {} } }));
  expect(sql).not.toMatch(/unattributed/);
});

it('validates the policy at top level and per table', () => {
  expect(() => validateConfig({ unattributed: 'deny', tables: { 'public.t': { unattributed: 'no' } } }))
    .toThrow(/tables\["public.t"\].unattributed must be "allow", "warn" or "reject"[\s\S]*"unattributed" must be/);
});
