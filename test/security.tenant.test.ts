// Tenant isolation: with "tenantIsolation": true the app role reads only the entries of the
// tenant set in its transaction, and nothing when no tenant is set.
import { Pool } from 'pg';
import { withAuditSession } from '../src/session';
import { createTestDatabase, type TestDatabase } from './helpers';
import { asRole, dropRoles, roleName, sqlState, tenantDocsAsApp } from './security-helpers';

let db: TestDatabase;
let app: string;
let pool: Pool;

beforeAll(async () => {
  db = await createTestDatabase('sec_tenant');
  ({ app, pool } = await tenantDocsAsApp(db));
  await pool.query(`INSERT INTO docs (title) VALUES ('no tenant')`);
});

afterAll(async () => {
  await pool.end();
  await db.drop();
  await dropRoles([app, roleName(db, 'bypass')]);
});

const readLog = (tenant?: string) => withAuditSession(pool, { tenant }, async (c) =>
  (await c.query('SELECT tenant_id, actor FROM auditlog.log_entry ORDER BY id')).rows);

test('each entry stores the tenant of its transaction', async () => {
  expect((await db.entries()).map((e) => e.tenant_id)).toEqual(['t1', 't2', 't1', null]);
});

test('the app role reads only the entries of the tenant set in its transaction', async () => {
  expect(await readLog('t1')).toEqual([{ tenant_id: 't1', actor: 'user-of-t1' }, { tenant_id: 't1', actor: 'user-of-t1' }]);
  expect(await readLog('t2')).toEqual([{ tenant_id: 't2', actor: 'user-of-t2' }]);
  expect(await readLog('t3')).toEqual([]);
});

test('with no tenant set the app role sees nothing, not even entries written without a tenant', async () => {
  expect(await readLog()).toEqual([]);
  expect((await pool.query('SELECT count(*)::int AS n FROM auditlog.log_entry')).rows[0].n).toBe(0);
});

test('the app role cannot switch row-level security off', async () => {
  await asRole(db, app, async (c) => {
    expect(await sqlState(c, 'ALTER TABLE auditlog.log_entry DISABLE ROW LEVEL SECURITY')).toBe('42501');
    expect(await sqlState(c, 'DROP POLICY auditlog_tenant_isolation ON auditlog.log_entry')).toBe('42501');
    // row_security = off makes a filtered query fail rather than return everything.
    await c.query('SET row_security = off');
    expect(await sqlState(c, 'SELECT * FROM auditlog.log_entry')).toBe('42501');
  });
});

test('the owner (here the installing superuser) reads every tenant', async () => {
  expect((await db.entries()).length).toBe(4);
});

test('turning tenantIsolation off again removes the policy', async () => {
  await db.install({ tables: { 'public.docs': {} }, roles: { app, bypass: roleName(db, 'bypass') } });
  try {
    expect((await readLog()).length).toBe(4);
  } finally {
    await db.install({ tables: { 'public.docs': {} }, tenantIsolation: true, roles: { app, bypass: roleName(db, 'bypass') } });
  }
  expect(await readLog()).toEqual([]);
});
