// After ALTER TABLE changes an audited table's columns, writes keep working and nothing is lost
// or leaked: the DDL watch swaps in the generic fallback until `auditlog install` runs again.
import { status } from '../src/install';
import type { AuditConfig } from '../src/interfaces';
import type { CaptureMode } from '../src/interfaces';
import { createTestDatabase, type TestDatabase } from './helpers';

describe.each<CaptureMode>(['row', 'statement'])('%s mode', (mode) => {
let db: TestDatabase;
const config: AuditConfig = {
  mode,
  excludeFields: ['updated_at'],
  tables: {
    'public.people': { mask: ['ssn'], exclude: ['notes'], snapshot: true, objectRepr: 'name' },
    'public.pairs': {},
  },
};

beforeAll(async () => {
  db = await createTestDatabase(`ddl_${mode}`);
  await db.sql(`
    CREATE TABLE people (id int PRIMARY KEY, name text, ssn text, notes text, updated_at timestamptz, age int);
    CREATE TABLE pairs (a int, b int, v text, PRIMARY KEY (a, b));
    INSERT INTO people VALUES (1, 'Ada', '111', 'n', now(), 36);
    INSERT INTO pairs VALUES (1, 2, 'x');`);
  await db.install(config);
});

afterAll(() => db.drop());
beforeEach(() => db.sql('TRUNCATE auditlog.log_entry'));

// The config after `ssn` is renamed to `tax_id` below.
const renamed: AuditConfig = {
  ...config,
  tables: { ...config.tables, 'public.people': { mask: ['tax_id'], exclude: ['notes'], snapshot: true, objectRepr: 'name' } },
};

const stateOf = async (table: string, cfg = config) =>
  (await db.withClient((c) => status(c, cfg))).tables.find((t) => t.table === table);

test('an ALTER TABLE that keeps the columns changes nothing', async () => {
  await db.sql('ALTER TABLE people ADD CONSTRAINT age_positive CHECK (age > 0)');
  expect(await stateOf('public.people')).toEqual({ table: 'public.people', state: 'installed' });
});

test('dropping a tracked column does not break writes; the other columns are still captured', async () => {
  await db.sql('ALTER TABLE people DROP COLUMN age');
  await db.sql(`UPDATE people SET name = 'Ada L.' WHERE id = 1`);
  await db.sql(`UPDATE people SET notes = 'excluded still', updated_at = now() WHERE id = 1`); // no-op for the log
  await db.sql(`INSERT INTO people (id, name, ssn) VALUES (2, 'Grace', '222')`);
  const entries = await db.entries();
  expect(entries.map((e) => [e.action, e.object_pk, e.object_repr, e.changes])).toEqual([
    ['update', '1', 'Ada L.', { name: ['Ada', 'Ada L.'] }],
    ['insert', '2', 'Grace', { id: [null, 2], name: [null, 'Grace'], ssn: [null, '[masked]'] }],
  ]);
  expect(entries[1]!.snapshot).toEqual({ id: 2, name: 'Grace', ssn: '[masked]' });
  expect(await stateOf('public.people')).toMatchObject({ state: 'outdated', detail: expect.stringContaining('generic fallback') });
});

test('a renamed masked column is recorded masked, never in clear', async () => {
  await db.sql('ALTER TABLE people RENAME COLUMN ssn TO tax_id');
  await db.sql(`UPDATE people SET tax_id = 'secret-333' WHERE id = 2`);
  const [e] = await db.entries();
  expect(e!.changes).toEqual({ tax_id: ['[masked]', '[masked]'] });
  expect(JSON.stringify(await db.entries())).not.toContain('secret');
});

test('a new column is captured at once (masked), and in clear after install per the config', async () => {
  await db.sql('ALTER TABLE pairs ADD COLUMN w text');
  await db.sql(`UPDATE pairs SET w = 'new', v = 'y'`);
  expect((await db.entries())[0]).toMatchObject({ object_pk: '[1, 2]', changes: { v: ['x', 'y'], w: [null, '[masked]'] } });
  await db.install(renamed);
  expect(await stateOf('public.pairs', renamed)).toEqual({ table: 'public.pairs', state: 'installed' });
  await db.sql(`UPDATE pairs SET w = 'newer'`);
  expect((await db.entries()).pop()!.changes).toEqual({ w: ['new', 'newer'] });
});

test('install restores the generated function for the altered table', async () => {
  await db.install(renamed);
  expect(await stateOf('public.people', renamed)).toEqual({ table: 'public.people', state: 'installed' });
  const [{ comment }] = await db.sql(`SELECT obj_description(tgfoid, 'pg_proc') AS comment FROM pg_trigger
                                       WHERE tgrelid = 'people'::regclass AND tgname NOT LIKE 'auditlog_truncate%'`);
  expect(comment).toMatch(/^pg-auditlog [0-9a-f]{12}$/);
  await db.sql(`UPDATE people SET tax_id = 'x', name = 'G.' WHERE id = 2`);
  expect((await db.entries()).pop()!.changes).toEqual({ name: ['Grace', 'G.'], tax_id: ['[masked]', '[masked]'] });
});
});
