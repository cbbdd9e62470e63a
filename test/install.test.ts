// install / status / uninstall against a real database: idempotence, concurrency, drift.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { install, status, uninstall } from '../src/install';
import type { AuditConfig } from '../src/interfaces';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('install');
});

afterAll(() => db.drop());

const triggerCount = async (table: string) =>
  (await db.sql(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, [table]))[0].n;

describe('a fresh database', () => {
  beforeAll(async () => {
    await db.sql(`
      CREATE TABLE public.migrations (id int, note text);
      INSERT INTO public.migrations VALUES (1, 'the user''s own row');
      CREATE TABLE products (id int PRIMARY KEY, name text, price numeric);
      CREATE TABLE stock (sku text PRIMARY KEY, qty int);
    `);
  });

  test('install creates the audit schema without touching a user table named migrations', async () => {
    const files = readdirSync(path.join(__dirname, '..', 'sql')).filter((f) => f.endsWith('.sql'))
      .sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
    const result = await db.withClient((c) => install(c, { tables: { 'public.products': {} } }));
    expect(result).toMatchObject({ migrationsApplied: files, installed: ['public.products'] });
    expect(await db.sql('SELECT * FROM public.migrations')).toEqual([{ id: 1, note: "the user's own row" }]);
    expect((await db.sql(`SELECT array_agg(attname::text ORDER BY attnum) AS cols FROM pg_attribute
                          WHERE attrelid = 'public.migrations'::regclass AND attnum > 0`))[0].cols).toEqual(['id', 'note']);
    expect((await db.sql('SELECT id, name FROM auditlog.migrations ORDER BY id')).slice(0, 2)).toEqual([
      { id: 0, name: 'create-migrations-table' }, { id: 1, name: 'audit-schema' },
    ]);
    expect(await db.sql('SELECT count(*)::int AS n FROM auditlog.migrations')).toEqual([{ n: files.length + 1 }]);
  });

  test('running install again is a no-op: nothing replaced', async () => {
    const before = await db.sql(`SELECT oid, tgname FROM pg_trigger WHERE tgrelid = 'products'::regclass AND NOT tgisinternal ORDER BY oid`);
    const result = await db.withClient((c) => install(c, { tables: { 'public.products': {} } }));
    expect(result).toEqual({ migrationsApplied: [], installed: [], unchanged: ['public.products'], pruned: [] });
    expect(await db.sql(`SELECT oid, tgname FROM pg_trigger WHERE tgrelid = 'products'::regclass AND NOT tgisinternal ORDER BY oid`)).toEqual(before);
  });

  test('twenty concurrent installs leave exactly one correct set of triggers', async () => {
    const config: AuditConfig = { tables: { 'public.products': { exclude: ['price'] }, 'public.stock': {} } };
    const results = await Promise.all(Array.from({ length: 20 }, () => db.withClient((c) => install(c, config))));
    expect(results.filter((r) => r.installed.length > 0)).toHaveLength(1);
    expect(await triggerCount('products')).toBe(4); // insert, update, delete, truncate (statement mode)
    expect(await triggerCount('stock')).toBe(4);
    expect(await db.withClient((c) => status(c, config))).toMatchObject({ drift: false });
    await db.sql(`INSERT INTO products VALUES (1, 'pen', 2)`);
    expect(await db.entries(`table_name = 'products'`)).toHaveLength(1); // one trigger fired, not twenty
  });
});

describe('status and drift', () => {
  const config: AuditConfig = { tables: { 'public.products': { exclude: ['price'] }, 'public.stock': {} } };

  test('reports every table installed and no drift', async () => {
    const report = await db.withClient((c) => status(c, config));
    expect(report).toEqual({
      schema: 'auditlog', pendingMigrations: 0, drift: false, ddlWatch: true, problems: [],
      tables: [{ table: 'public.products', state: 'installed' }, { table: 'public.stock', state: 'installed' }],
    });
  });

  test('a table added to the config is missing; one removed is orphaned', async () => {
    await db.sql('CREATE TABLE suppliers (id int PRIMARY KEY)');
    const report = await db.withClient((c) => status(c, { tables: { 'public.products': { exclude: ['price'] }, 'public.suppliers': {} } }));
    expect(report.drift).toBe(true);
    expect(report.tables.map((t) => [t.table, t.state])).toEqual([
      ['public.products', 'installed'], ['public.stock', 'orphaned'], ['public.suppliers', 'missing'],
    ]);
  });

  test('a config change makes the table outdated; install updates it', async () => {
    const changed: AuditConfig = { tables: { 'public.products': {}, 'public.stock': {} } };
    expect((await db.withClient((c) => status(c, changed))).tables[0]).toMatchObject({ table: 'public.products', state: 'outdated' });
    const result = await db.withClient((c) => install(c, changed));
    expect(result.installed).toEqual(['public.products']);
    await db.sql(`UPDATE products SET price = 3 WHERE id = 1`);
    expect((await db.entries(`table_name = 'products' AND action = 'update'`))[0]!.changes).toEqual({ price: [2, 3] });
    await db.withClient((c) => install(c, config)); // back to the shared config
  });

  test('after ALTER TABLE ADD COLUMN status says outdated; after install the column is captured', async () => {
    await db.sql('ALTER TABLE stock ADD COLUMN location text');
    const report = await db.withClient((c) => status(c, config));
    expect(report.tables.find((t) => t.table === 'public.stock')).toMatchObject({ state: 'outdated' });
    await db.withClient((c) => install(c, config));
    await db.sql(`INSERT INTO stock VALUES ('A-1', 5, 'shelf 3')`);
    expect((await db.entries(`table_name = 'stock'`)).pop()!.changes).toEqual({ sku: [null, 'A-1'], qty: [null, 5], location: [null, 'shelf 3'] });
  });

  test('a disabled trigger is drift, and install re-enables it', async () => {
    const [{ tgname }] = await db.sql(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'stock'::regclass AND tgname LIKE 'auditlog_update%'`);
    await db.sql(`ALTER TABLE stock DISABLE TRIGGER "${tgname}"`);
    const report = await db.withClient((c) => status(c, config));
    expect(report.tables.find((t) => t.table === 'public.stock')).toMatchObject({ state: 'outdated', detail: expect.stringContaining('disabled') });
    await db.withClient((c) => install(c, config));
    expect((await db.withClient((c) => status(c, config))).drift).toBe(false);
  });

  test('install --prune removes capture from tables no longer in the config; without it they stay', async () => {
    const only: AuditConfig = { tables: { 'public.products': { exclude: ['price'] } } };
    const kept = await db.withClient((c) => install(c, only));
    expect(kept.pruned).toEqual([]);
    expect(await triggerCount('stock')).toBe(4);
    const pruned = await db.withClient((c) => install(c, only, { prune: true }));
    expect(pruned.pruned).toEqual(['public.stock']);
    expect(await triggerCount('stock')).toBe(0);
    await db.withClient((c) => install(c, config));
  });
});

describe('validation against the catalog', () => {
  test('every problem is reported at once, naming table, field and fix; nothing is written', async () => {
    await db.sql('CREATE TABLE "Orders" (id int PRIMARY KEY, total int); CREATE TABLE logs (msg text); CREATE VIEW v_products AS SELECT * FROM products');
    const before = await db.sql(`SELECT count(*)::int AS n FROM pg_trigger WHERE NOT tgisinternal`);
    const err = await db.withClient((c) => install(c, {
      tables: {
        'public.products': { exclude: ['nmae'], mask: ['Name'] },
        'public.orders': {},
        'public.nope': {},
        'public.logs': {},
        'public.v_products': {},
        'public.stock': { include: ['qty'], objectRepr: 'sku', mask: ['sku'] },
      },
    })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
    const problems = (err as { problems: string[] }).problems;
    expect(problems).toEqual(expect.arrayContaining([
      expect.stringMatching(/tables\["public.products"\]\.exclude: column "nmae" does not exist in public.products; its columns are id, name, price/),
      expect.stringMatching(/tables\["public.products"\]\.mask: column "Name" does not exist in public.products; did you mean "name"\?/),
      expect.stringMatching(/tables\["public.orders"\]: table public.orders does not exist; did you mean "public"."Orders"\?/),
      expect.stringMatching(/tables\["public.nope"\]: table public.nope does not exist; check the name/),
      expect.stringMatching(/tables\["public.logs"\]: public.logs has no primary key: add one .* or set "primaryKey"/),
      expect.stringMatching(/tables\["public.v_products"\]: public.v_products is a view; only tables can be audited/),
      expect.stringMatching(/tables\["public.stock"\]\.objectRepr: column "sku" is masked/),
    ]));
    expect(problems).toHaveLength(7);
    expect(await db.sql(`SELECT count(*)::int AS n FROM pg_trigger WHERE NOT tgisinternal`)).toEqual(before);
  });

  test('includeAll audits every table of a schema except those listed, and names keyless tables', async () => {
    await db.sql('CREATE SCHEMA shop; CREATE TABLE shop.a (id int PRIMARY KEY); CREATE TABLE shop.b (id int PRIMARY KEY); CREATE TABLE shop.c (x int)');
    await expect(db.withClient((c) => install(c, { includeAll: { schemas: ['shop'] } })))
      .rejects.toThrow(/includeAll: table shop.c has no primary key: .* list it in includeAll.except/);
    await db.withClient((c) => install(c, { includeAll: { schemas: ['shop'], except: ['shop.c', 'shop.b'] }, tables: { 'public.products': { exclude: ['price'] } } }));
    await db.sql('INSERT INTO shop.a VALUES (1); INSERT INTO shop.b VALUES (1)');
    expect((await db.entries(`table_schema = 'shop'`)).map((e) => e.table_name)).toEqual(['a']);
  });
});

describe('another audit schema, and uninstall', () => {
  test('the audit schema name is configurable, quoted everywhere', async () => {
    await db.sql('CREATE TABLE notes (id int PRIMARY KEY, body text)');
    await db.withClient((c) => install(c, { schema: 'Audit Trail', tables: { 'public.notes': {} } }));
    await db.sql(`INSERT INTO notes VALUES (1, 'hi')`);
    expect(await db.sql(`SELECT action, changes FROM "Audit Trail".log_entry`)).toEqual([{ action: 'insert', changes: { id: [null, 1], body: [null, 'hi'] } }]);
    expect(await db.sql(`SELECT count(*)::int AS n FROM auditlog.log_entry WHERE table_name = 'notes'`)).toEqual([{ n: 0 }]);
  });

  test('uninstall removes triggers and functions but keeps the log; --drop-schema drops it', async () => {
    const result = await db.withClient((c) => uninstall(c, 'Audit Trail'));
    expect(result.tables).toEqual(['public.notes']);
    expect(await triggerCount('notes')).toBe(0);
    expect(await db.sql(`SELECT count(*)::int AS n FROM pg_proc WHERE pronamespace = '"Audit Trail"'::regnamespace
                         AND obj_description(oid, 'pg_proc') LIKE 'pg-auditlog %'`)).toEqual([{ n: 0 }]);
    expect(await db.sql(`SELECT count(*)::int AS n FROM "Audit Trail".log_entry`)).toEqual([{ n: 1 }]);
    await db.sql(`INSERT INTO notes VALUES (2, 'not audited')`);
    await db.withClient((c) => uninstall(c, 'Audit Trail', { dropSchema: true }));
    expect(await db.sql(`SELECT to_regnamespace('"Audit Trail"') AS s`)).toEqual([{ s: null }]);
  });

  test('a failed install leaves nothing behind (one transaction)', async () => {
    const c = new Client(db.url);
    await c.connect();
    try {
      await c.query('CREATE TABLE widgets (id int PRIMARY KEY)');
      // A lock held elsewhere makes the trigger creation wait; lock_timeout turns that into an error mid-install.
      const blocker = new Client(db.url);
      await blocker.connect();
      await blocker.query('BEGIN; LOCK TABLE widgets IN ACCESS EXCLUSIVE MODE');
      await c.query(`SET lock_timeout = '200ms'`);
      await expect(install(c, { schema: 'fresh_schema', tables: { 'public.widgets': {} } })).rejects.toThrow(/lock timeout/);
      await blocker.query('ROLLBACK');
      await blocker.end();
      expect((await c.query(`SELECT to_regnamespace('fresh_schema') AS s`)).rows).toEqual([{ s: null }]);
    } finally {
      await c.end();
    }
  });
});
