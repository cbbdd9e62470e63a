// The generator is pure: its SQL is compared with a reviewed golden file, and edge cases are
// executed against a real database.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TablePlan } from '../src/config/resolve';
import { generateTable } from '../src/generate';
import { createTestDatabase, type TestDatabase } from './helpers';

const usersPlan: TablePlan = {
  table: { schema: 'public', name: 'users' },
  columns: [
    { name: 'id', masked: false, compareAs: null },
    { name: 'email', masked: false, compareAs: null },
    { name: 'ssn', masked: true, compareAs: null },
    { name: 'prefs', masked: false, compareAs: 'jsonb' },
  ],
  primaryKey: ['id'],
  objectRepr: 'email',
  snapshot: true,
  actions: ['insert', 'update', 'delete', 'truncate'],
  mode: 'row',
  mapping: {},
  allColumns: ['id', 'email', 'ssn', 'prefs'],
};

// A partitioned table: statement-level triggers on it and on each partition, whatever the mode.
const ordersPlan: TablePlan = {
  table: { schema: 'public', name: 'orders' },
  columns: [
    { name: 'id', masked: false, compareAs: null },
    { name: 'region', masked: false, compareAs: null },
    { name: 'total', masked: false, compareAs: null },
  ],
  primaryKey: ['id', 'region'],
  snapshot: false,
  actions: ['insert', 'update', 'delete', 'truncate'],
  mode: 'row',
  mapping: {},
  allColumns: ['id', 'region', 'total'],
  partitioned: true,
  partitions: [{ schema: 'public', name: 'orders_eu' }, { schema: 'public', name: 'orders_us' }],
};

test.each([
  ['users.sql', usersPlan],
  ['users-statement.sql', { ...usersPlan, mode: 'statement' as const }],
  ['orders-partitioned.sql', ordersPlan],
])('generated SQL matches the reviewed golden file %s (UPDATE_GOLDEN=1 to accept a change)', (name, plan) => {
  const file = path.join(__dirname, 'golden', name);
  const { sql } = generateTable('auditlog', plan);
  if (process.env.UPDATE_GOLDEN) writeFileSync(file, sql);
  expect(sql).toBe(readFileSync(file, 'utf8'));
});

test('the hash of a partitioned table covers what each partition gets, not which partitions exist', () => {
  const a = generateTable('auditlog', ordersPlan);
  expect(generateTable('auditlog', { ...ordersPlan, partitions: [] }).hash).toBe(a.hash);
  expect(generateTable('auditlog', { ...ordersPlan, mode: 'statement' }).sql).toBe(a.sql);
  expect(a.sql).toContain('ON "public"."orders_us"');
});

test('generation is deterministic and the hash follows the definition', () => {
  const a = generateTable('auditlog', usersPlan);
  expect(generateTable('auditlog', usersPlan)).toEqual(a);
  const b = generateTable('auditlog', { ...usersPlan, snapshot: false });
  expect(b.hash).not.toBe(a.hash);
  expect(b.functionName).toBe(a.functionName); // the name follows the table, not the config
});

describe('executed', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('generate');
  });
  afterAll(() => db.drop());

  test('a column named like the dollar-quote tag cannot end the function body', async () => {
    await db.sql('CREATE TABLE tricky (id int PRIMARY KEY, "$capture$" text, "a\'b" text, "x""y" text)');
    await db.install({ tables: { 'public.tricky': {} } });
    await db.sql(`INSERT INTO tricky VALUES (1, 'd', 'q', 'r')`);
    expect((await db.entries())[0]!.changes).toEqual({ id: [null, 1], $capture$: [null, 'd'], "a'b": [null, 'q'], 'x"y': [null, 'r'] });
  });

  test('tables wider than one jsonb_build_object call (over 50 columns) are captured whole', async () => {
    const cols = Array.from({ length: 130 }, (_, i) => `c${i} int DEFAULT ${i}`).join(', ');
    await db.sql(`CREATE TABLE wide (id int PRIMARY KEY, ${cols})`);
    await db.install({ tables: { 'public.wide': { snapshot: true } } });
    await db.sql('INSERT INTO wide (id) VALUES (1)');
    await db.sql('UPDATE wide SET c0 = -1, c129 = -1');
    const [ins, upd] = await db.entries(`table_name = 'wide'`);
    expect(Object.keys(ins!.changes!)).toHaveLength(131);
    expect(ins!.changes!.c129).toEqual([null, 129]);
    expect(Object.keys(ins!.snapshot!)).toHaveLength(131);
    expect(upd!.changes).toEqual({ c0: [0, -1], c129: [129, -1] });
  });
});
