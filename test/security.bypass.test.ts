// Switching capture off (auditlog.disable): honoured for members of the bypass role only,
// ignored and recorded for everyone else, and never leaking past the transaction.
import { Pool } from 'pg';
import { withAuditSession } from '../src/session';
import { createTestDatabase, type TestDatabase } from './helpers';
import { asRole, createLoginRole, dropRoles, roleName, urlAs } from './security-helpers';

let db: TestDatabase;
let app: string;
let importer: string;
let bypass: string;

beforeAll(async () => {
  db = await createTestDatabase('sec_bypass');
  app = roleName(db, 'app');
  importer = roleName(db, 'importer');
  bypass = roleName(db, 'bypass');
  await createLoginRole(app);
  await createLoginRole(importer);
  await db.sql(`
    CREATE TABLE items (id serial PRIMARY KEY, name text);
    GRANT SELECT, INSERT, UPDATE, DELETE ON items TO "${app}", "${importer}";
    GRANT USAGE ON SEQUENCE items_id_seq TO "${app}", "${importer}";
  `);
  await db.install({ tables: { 'public.items': {} }, roles: { app, bypass } });
  await db.sql(`GRANT "${bypass}" TO "${importer}"`);
});

afterAll(async () => {
  await db.drop();
  await dropRoles([app, importer, bypass]);
});

beforeEach(() => db.sql('TRUNCATE auditlog.log_entry'));

test('a member of the bypass role switches capture off for one transaction; one "bypass" entry says so', async () => {
  await asRole(db, importer, (c) => withAuditSession(c, { disable: true, actor: 'import-job', data: { file: 'a.csv' } }, async () => {
    await c.query(`INSERT INTO items (name) SELECT 'row ' || i FROM generate_series(1, 100) i`);
    await c.query(`UPDATE items SET name = name || '!'`);
  }));
  const entries = await db.entries();
  expect(entries).toHaveLength(1);
  expect(entries[0]).toMatchObject({
    action: 'bypass', table_name: 'items', db_user: importer, actor: 'import-job',
    additional_data: { setting: 'auditlog.disable', bypass_role: bypass, granted: true, data: { file: 'a.csv' } },
  });
});

test('for any other role the setting is ignored: every change is captured and the attempt recorded once', async () => {
  await asRole(db, app, (c) => withAuditSession(c, { disable: true, actor: 'sneaky' }, async () => {
    await c.query(`INSERT INTO items (name) VALUES ('a'), ('b')`);
    await c.query(`DELETE FROM items WHERE name = 'a'`);
  }));
  const entries = await db.entries();
  expect(entries.map((e) => [e.action, e.db_user, e.actor])).toEqual([
    ['bypass_refused', app, 'sneaky'], ['insert', app, 'sneaky'], ['insert', app, 'sneaky'], ['delete', app, 'sneaky'],
  ]);
  expect(entries[0]!.additional_data).toMatchObject({ granted: false, bypass_role: bypass });
});

test('a session-level SET by the app is ignored too, and so is SET ROLE to a role it cannot use', async () => {
  await asRole(db, app, async (c) => {
    await c.query(`SET auditlog.disable = 'on'`);
    await c.query(`INSERT INTO items (name) VALUES ('c')`);
    await expect(c.query(`SET ROLE "${bypass}"`)).rejects.toMatchObject({ code: '42501' });
  });
  expect((await db.entries()).map((e) => e.action)).toEqual(['bypass_refused', 'insert']);
});

test('on a pooled connection the switch ends with the transaction: the next one is captured', async () => {
  const pool = new Pool({ connectionString: urlAs(db, importer), max: 1 });
  try {
    await withAuditSession(pool, { disable: true }, (c) => c.query(`INSERT INTO items (name) VALUES ('bulk')`));
    await withAuditSession(pool, { actor: 'next-request' }, (c) => c.query(`INSERT INTO items (name) VALUES ('normal')`));
    await pool.query(`INSERT INTO items (name) VALUES ('no session')`);
  } finally {
    await pool.end();
  }
  expect((await db.entries()).map((e) => [e.action, e.actor])).toEqual([
    ['bypass', null], ['insert', 'next-request'], ['insert', null],
  ]);
});

test('the record that a bypass entry was written rolls back with it, cannot be forged, and does not pile up', async () => {
  for (let i = 0; i < 3; i++) {
    await asRole(db, importer, (c) => withAuditSession(c, { disable: true }, async () => {
      await c.query('SAVEPOINT s');
      await c.query(`INSERT INTO items (name) VALUES ('undone')`);
      await c.query('ROLLBACK TO SAVEPOINT s');
      // The entry went with the savepoint: the next statement writes it again.
      await c.query(`INSERT INTO items (name) VALUES ('kept')`);
      await c.query(`INSERT INTO items (name) VALUES ('kept too')`);
    }));
  }
  expect((await db.entries()).map((e) => e.action)).toEqual(['bypass', 'bypass', 'bypass']);
  // Marking a transaction's bypass as recorded would switch capture off without a trace.
  await asRole(db, importer, async (c) => {
    await c.query('BEGIN');
    await expect(c.query(`INSERT INTO auditlog.bypass_recorded (action) VALUES ('bypass')`)).rejects.toMatchObject({ code: '42501' });
    await c.query('ROLLBACK');
  });
  // Each new record removes those of transactions that have ended: at most the last one is left.
  const [{ n }] = await db.sql('SELECT count(*)::int AS n FROM auditlog.bypass_recorded');
  expect(n).toBeLessThanOrEqual(1);
});

test('a rolled-back bypass leaves nothing; disable must be a boolean', async () => {
  await asRole(db, importer, async (c) => {
    await expect(withAuditSession(c, { disable: true }, async () => {
      await c.query(`INSERT INTO items (name) VALUES ('gone')`);
      throw new Error('abort import');
    })).rejects.toThrow('abort import');
    await expect(withAuditSession(c, { disable: 'yes' as unknown as boolean }, async () => undefined))
      .rejects.toMatchObject({ code: 'CONTEXT_INVALID', message: expect.stringContaining('disable must be true or false') });
  });
  expect(await db.entries()).toEqual([]);
});

test('when the bypass role is dropped nobody bypasses, and writes still succeed', async () => {
  const gone = roleName(db, 'gone');
  await db.withClient(async (c) => {
    await c.query(`CREATE ROLE "${gone}" NOLOGIN`);
    await c.query(`UPDATE auditlog.security_setting SET bypass_role = $1`, [gone]);
    await c.query(`DROP ROLE "${gone}"`);
  });
  try {
    await asRole(db, importer, (c) => withAuditSession(c, { disable: true }, () => c.query(`INSERT INTO items (name) VALUES ('x')`)));
  } finally {
    await db.sql(`UPDATE auditlog.security_setting SET bypass_role = $1`, [bypass]);
  }
  expect((await db.entries()).map((e) => e.action)).toEqual(['bypass_refused', 'insert']);
});
