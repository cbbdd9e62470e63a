// Installers racing: within a database the advisory lock serialises them; across databases
// (roles are cluster-wide) a bypass or owner role created by another installer counts as success.
import { createTestDatabase, type TestDatabase } from './helpers';
import { dropRoles, roleName } from './security-helpers';

let dbs: TestDatabase[];
let owner: string;
let bypass: string;

beforeAll(async () => {
  dbs = await Promise.all([createTestDatabase('sec_race_a'), createTestDatabase('sec_race_b')]);
  owner = roleName(dbs[0]!, 'owner');
  bypass = roleName(dbs[0]!, 'bypass');
  for (const db of dbs) await db.sql('CREATE TABLE t (id int PRIMARY KEY)');
});

afterAll(async () => {
  await Promise.all(dbs.map((db) => db.drop()));
  await dropRoles([owner, bypass]);
});

test('ten installers in two databases create the shared roles once and all succeed', async () => {
  const config = { tables: { 'public.t': {} }, tamperEvidence: true, roles: { owner, bypass } };
  const results = await Promise.allSettled(dbs.flatMap((db) => Array.from({ length: 5 }, () => db.install(config))));
  expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
  for (const db of dbs) {
    await db.sql('INSERT INTO t VALUES (1)');
    expect((await db.entries()).map((e) => e.action)).toEqual(['insert']);
    const [{ owner: schemaOwner }] = await db.sql(`SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'auditlog'`);
    expect(schemaOwner).toBe(owner);
  }
});
