// The viewer sees what its database role may see: tenant isolation filters it to the
// request's tenant, and a role without read access (roles.appReadsLog false) gets a 403.
import { Pool } from 'pg';
import { serveViewer } from '../src';
import type { ViewerServer } from '../src/interfaces';
import { createTestDatabase, type TestDatabase } from './helpers';
import { dropRoles, roleName, tenantDocsAsApp } from './security-helpers';

let db: TestDatabase;
let app: string;
let pool: Pool;
let server: ViewerServer;

beforeAll(async () => {
  db = await createTestDatabase('viewer_sec');
  ({ app, pool } = await tenantDocsAsApp(db));
  // The tenant comes from the request (here a header an upstream login would have set).
  server = await serveViewer({ pool, port: 0, live: false, log: () => undefined, tenant: (req) => req.headers['x-tenant'] as string | undefined });
});

afterAll(async () => {
  await server.close();
  await pool.end();
  await db.drop();
  await dropRoles([app, roleName(db, 'bypass')]);
});

const entries = async (path: string, tenant?: string) => {
  const res = await fetch(`${server.url.replace(/\/$/, '')}${path}`, { headers: tenant ? { 'x-tenant': tenant } : {} });
  return { status: res.status, body: (await res.json()) as any };
};

test('tenant isolation: a request reads only its tenant, and nothing without one', async () => {
  const t1 = await entries('/api/entries', 't1');
  expect(t1.body.entries.map((e: any) => e.tenant_id)).toEqual(['t1', 't1']);
  expect((await entries('/api/entries', 't2')).body.entries.map((e: any) => e.actor)).toEqual(['user-of-t2']);
  expect((await entries('/api/entries')).body.entries).toEqual([]);
  // Another tenant's entry is not found by id either.
  const t2id = (await db.entries(`tenant_id = 't2'`))[0]!.id;
  expect((await entries(`/api/entries/${t2id}`, 't1')).status).toBe(404);
  expect((await entries(`/api/entries/${t2id}`, 't2')).status).toBe(200);
});

test('a role that may not read the log gets 403, with the reason', async () => {
  await db.install({ tables: { 'public.docs': {} }, tenantIsolation: true, roles: { app, bypass: roleName(db, 'bypass'), appReadsLog: false } });
  try {
    const res = await entries('/api/entries', 't1');
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'INSUFFICIENT_PRIVILEGE', message: expect.stringContaining('appReadsLog') });
  } finally {
    await db.install({ tables: { 'public.docs': {} }, tenantIsolation: true, roles: { app, bypass: roleName(db, 'bypass') } });
  }
});
