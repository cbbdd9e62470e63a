// Every type class is compared by what is stored and serialised the same from every session;
// no column type can make a write fail. Both capture modes write the same entries.
import type { CaptureMode } from '../src/interfaces';
import { getForObject } from '../src/history';
import { createTestDatabase, type TestDatabase } from './helpers';

/** Two different values of each contrib type (as literals), so an update changes the column. */
const CONTRIB_SAMPLES: Record<string, [string, string]> = {
  citext: ['abc', 'ABC'],
  cube: ['(1, 2)', '(1, 3)'],
  earth: ['(6378168, 0, 0)', '(0, 6378168, 0)'],
  hstore: ['"a"=>"1"', '"a"=>"2"'],
  ean13: ['978-0-393-04002-9', '978-0-306-40615-7'],
  isbn13: ['978-0-393-04002-9', '978-0-306-40615-7'],
  isbn: ['0-393-04002-X', '0-306-40615-2'],
  ismn: ['M-706700-00-7', 'M-2306-7118-7'],
  ismn13: ['979-0-2600-0043-8', '979-0-2306-7118-7'],
  issn: ['1436-4522', '0317-8471'],
  issn13: ['977-1436-452-00-8', '977-0317-847-00-1'],
  upc: ['036000291452', '012345678905'],
  ltree: ['a.b', 'a.c'],
  lquery: ['a.*', 'b.*'],
  ltxtquery: ['a & b', 'a | b'],
  seg: ['1 .. 2', '1 .. 3'],
  query_int: ['1&2', '1|2'],
  lo: ['1', '2'],
  tablefunc_crosstab_2: ['(a,b,c)', '(a,b,d)'],
  tablefunc_crosstab_3: ['(a,b,c,d)', '(a,b,c,e)'],
  tablefunc_crosstab_4: ['(a,b,c,d,e)', '(a,b,c,d,f)'],
  dblink_pkey_results: ['(1,a)', '(2,a)'],
};

/** Built-in types without a btree equality (or with one that is not image equality). */
const BUILT_IN_SAMPLES: Record<string, [string, string]> = {
  json: ['{"a": 1}', '{"a": 1.0}'],
  jsonb: ['{"a": 1}', '{"a": 1.0}'],
  jsonpath: ['$.a', '$.b'],
  xml: ['<a/>', '<b/>'],
  point: ['(1,2)', '(1,3)'],
  line: ['{1,2,3}', '{1,2,4}'],
  lseg: ['[(1,2),(3,4)]', '[(1,2),(3,5)]'],
  box: ['(1,2),(3,4)', '(1,2),(3,5)'],
  path: ['[(1,2),(3,4)]', '[(1,2),(3,5)]'],
  polygon: ['((1,2),(3,4),(5,6))', '((1,2),(3,4),(5,7))'],
  circle: ['<(1,2),3>', '<(1,2),4>'],
  tsvector: ['a b', 'a c'],
  tsquery: ['a & b', 'a & c'],
  pg_snapshot: ['10:20:10,14,15', '10:20:10,14'],
  aclitem: ['postgres=r/postgres', 'postgres=w/postgres'],
  interval: ['1 day', '24 hours'],
  numeric: ['1.0', '1.000'],
  float8: ['0', '-0'],
  numrange: ['[1.0,2)', '[1.00,2)'],
  tstzrange: ['[2024-01-01 00:00+00,2024-02-01 00:00+00)', '[2024-01-01 00:00+00,2024-02-01 00:00+00]'],
  int4multirange: ['{[1,2)}', '{[1,3)}'],
  'numeric[]': ['{1.0}', '{1.00}'],
  'interval[]': ['{1 day}', '{24 hours}'],
};

/** Extension types only GiST / GIN use internally: their input function refuses every value. */
const INTERNAL_TYPES = /^(ghstore|ltree_gist|intbig_gkey|gtrgm|gbtreekey.*)$/;

const EXTENSIONS = ['citext', 'cube', 'earthdistance', 'hstore', 'isn', 'ltree', 'seg', 'intarray', 'lo', 'pg_trgm',
  'btree_gist', 'btree_gin', 'tablefunc', 'dblink', 'pgcrypto', 'uuid-ossp', 'xml2', 'fuzzystrmatch', 'unaccent',
  'dict_int', 'tsm_system_rows', 'pg_visibility', 'pg_freespacemap', 'pgrowlocks', 'amcheck', 'bloom', 'postgres_fdw',
  'file_fdw', 'sslinfo', 'tcn', 'insert_username', 'moddatetime', 'autoinc', 'refint', 'intagg', 'pg_prewarm',
  'pg_stat_statements', 'pg_surgery', 'pg_walinspect', 'pageinspect', 'pgstattuple', 'pg_buffercache', 'dict_xsyn',
  'tsm_system_time'];

describe.each<CaptureMode>(['row', 'statement'])('%s mode', (mode) => {
  let db: TestDatabase;
  let columns: Array<{ column: string; type: string; values: [string, string] }> = [];

  beforeAll(async () => {
    db = await createTestDatabase(`types_${mode}`);
    // Every contrib extension this server has (in public, as a user would create them).
    for (const ext of EXTENSIONS) {
      await db.sql(`DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS "${ext}" CASCADE; EXCEPTION WHEN others THEN NULL; END $$`);
    }
    const types: Array<{ name: string; composite_of_view: boolean }> = await db.sql(`
      SELECT DISTINCT t.typname AS name, coalesce(r.relkind NOT IN ('c'), false) AS composite_of_view
      FROM pg_type t
      JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
      LEFT JOIN pg_class r ON r.oid = t.typrelid
      WHERE t.typtype IN ('b', 'd', 'e', 'r', 'm', 'c') AND t.typisdefined
        AND t.typsubscript <> 'array_subscript_handler'::regproc
      ORDER BY 1`);
    const extensionTypes = types.filter((t) => !t.composite_of_view).map((t) => t.name);
    const missing = extensionTypes.filter((t) => !CONTRIB_SAMPLES[t] && !INTERNAL_TYPES.test(t));
    expect(missing).toEqual([]);  // a new contrib type: add two sample values above
    for (const t of extensionTypes.filter((n) => INTERNAL_TYPES.test(n))) {
      await expect(db.sql(`SELECT 'x'::${t}`)).rejects.toThrow();
    }
    const all = { ...BUILT_IN_SAMPLES, ...Object.fromEntries(extensionTypes.filter((t) => CONTRIB_SAMPLES[t]).map((t) => [t, CONTRIB_SAMPLES[t]!])) };
    columns = Object.entries(all).map(([type, values], i) => ({ column: `c${i}_${type.replace(/\W/g, '')}`, type, values }));
    await db.sql(`CREATE TABLE every_type (id int PRIMARY KEY, ${columns.map((c) => `${c.column} ${c.type}`).join(', ')})`);
    await db.sql(`CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`);
    await db.sql(`CREATE TABLE folded (id int PRIMARY KEY, t text COLLATE ci, tags text[] COLLATE ci, v varchar(10) COLLATE ci)`);
    await db.install({ mode, tables: { 'public.every_type': {}, 'public.folded': {} } });
  });

  afterAll(() => db.drop());
  beforeEach(() => db.sql('TRUNCATE auditlog.log_entry'));

  test('every built-in and contrib type: insert, update of each column and a no-op update all succeed, each change recorded', async () => {
    const literal = (v: string) => `'${v.replace(/'/g, "''")}'`;
    await db.sql(`INSERT INTO every_type VALUES (1, ${columns.map((c) => `${literal(c.values[0])}::${c.type}`).join(', ')})`);
    for (const c of columns) {
      await db.sql(`UPDATE every_type SET ${c.column} = ${literal(c.values[1])}::${c.type} WHERE id = 1`);
    }
    await db.sql(`UPDATE every_type SET id = id`);
    const entries = await db.entries();
    expect(entries.map((e) => e.action)).toEqual(['insert', ...columns.map(() => 'update')]);
    expect(entries.slice(1).map((e) => Object.keys(e.changes!))).toEqual(columns.map((c) => [c.column]));
  });

  test('changes that equality cannot see: a case-insensitive collation, interval, numeric scale', async () => {
    await db.sql(`INSERT INTO folded VALUES (1, 'abc', '{abc}', 'abc')`);
    await db.sql(`UPDATE folded SET t = 'ABC' WHERE id = 1`);
    await db.sql(`UPDATE folded SET tags = '{ABC}' WHERE id = 1`);
    await db.sql(`UPDATE folded SET v = 'ABC' WHERE id = 1`);
    await db.sql(`UPDATE folded SET t = t, tags = tags, v = v WHERE id = 1`);
    const entries = await db.entries();
    expect(entries.slice(1).map((e) => e.changes)).toEqual([
      { t: ['abc', 'ABC'] }, { tags: [['abc'], ['ABC']] }, { v: ['abc', 'ABC'] },
    ]);
    const intervalColumn = columns.find((c) => c.type === 'interval')!.column;
    const numericColumn = columns.find((c) => c.type === 'numeric')!.column;
    await db.sql(`INSERT INTO every_type (id, ${intervalColumn}, ${numericColumn}) VALUES (2, '1 day', 1.0)`);
    await db.sql(`UPDATE every_type SET ${intervalColumn} = '24 hours', ${numericColumn} = 1.000 WHERE id = 2`);
    const [, update] = await db.entries('object_pk = $1', ['2']);
    expect(update!.changes).toEqual({ [intervalColumn]: ['1 day', '24:00:00'], [numericColumn]: [1.0, 1.000] });
    const [{ text }] = await db.sql(`SELECT (changes->$1)::text AS text FROM auditlog.log_entry WHERE id = $2`, [numericColumn, update!.id]);
    expect(text).toBe('[1.0, 1.000]');  // the entry keeps the scale (JSON.parse does not)
  });

  test('types that are not built in are recorded by their text form (enum, hstore, composite of an enum)', async () => {
    const hstore = columns.find((c) => c.type === 'hstore');
    await db.sql(`CREATE TYPE mood AS ENUM ('happy', 'sad')`);
    await db.sql(`CREATE TYPE mood_at AS (m mood, at int)`);
    await db.sql(`CREATE TABLE moods (id int PRIMARY KEY, m mood, ms mood[], ma mood_at ${hstore ? ', h hstore' : ''})`);
    await db.install({ mode, tables: { 'public.every_type': {}, 'public.folded': {}, 'public.moods': {} } });
    await db.sql(`INSERT INTO moods VALUES (1, 'happy', '{happy,sad}', '(sad,3)' ${hstore ? `, '"a"=>"1"'` : ''})`);
    const [e] = await db.entries();
    expect(e!.changes).toEqual({
      id: [null, 1], m: [null, 'happy'], ms: [null, '{happy,sad}'], ma: [null, '(sad,3)'],
      ...(hstore ? { h: [null, '"a"=>"1"'] } : {}),
    });
  });
});

describe.each<CaptureMode>(['row', 'statement'])('object_pk and session settings (%s mode)', (mode) => {
  let db: TestDatabase;
  const SETTINGS = [
    `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'`,
    `SET TimeZone = 'Europe/Berlin'; SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'sql_standard'; SET extra_float_digits = 0; SET bytea_output = 'escape'`,
    `SET TimeZone = 'America/Los_Angeles'; SET DateStyle = 'German'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = -5`,
  ];

  beforeAll(async () => {
    db = await createTestDatabase(`pk_${mode}`);
    await db.sql(`
      CREATE TABLE payment (payment_date timestamptz, payment_id int, amount numeric, PRIMARY KEY (payment_date, payment_id));
      CREATE TABLE by_time (at timestamptz PRIMARY KEY, v text);
      CREATE TABLE by_day (day date PRIMARY KEY, v text);
      CREATE TABLE by_amount (amount numeric PRIMARY KEY, v text);
      CREATE TABLE by_bytes (b bytea PRIMARY KEY, v text);
      CREATE TYPE kind AS ENUM ('x', 'y');
      CREATE TABLE by_kind (k kind, n int, v text, PRIMARY KEY (k, n));`);
    await db.install({
      mode,
      tables: {
        'public.payment': {}, 'public.by_time': { objectRepr: 'at' }, 'public.by_day': {}, 'public.by_amount': {},
        'public.by_bytes': {}, 'public.by_kind': {},
      },
    });
  });
  afterAll(() => db.drop());

  test('the same row gets the same object_pk whatever the writer\'s TimeZone, DateStyle, IntervalStyle, extra_float_digits', async () => {
    for (const [i, settings] of SETTINGS.entries()) {
      await db.withClient(async (c) => {
        await c.query(settings);
        await c.query(`INSERT INTO payment VALUES ('2022-03-17 00:00:00+00', 16, ${i}) ON CONFLICT (payment_date, payment_id) DO UPDATE SET amount = EXCLUDED.amount`);
        await c.query(`INSERT INTO by_time VALUES ('2022-03-17 00:00:00.5+00', '${i}') ON CONFLICT (at) DO UPDATE SET v = EXCLUDED.v`);
        await c.query(`INSERT INTO by_day VALUES ('2022-03-17', '${i}') ON CONFLICT (day) DO UPDATE SET v = EXCLUDED.v`);
        await c.query(`INSERT INTO by_amount VALUES (1.50, '${i}') ON CONFLICT (amount) DO UPDATE SET v = EXCLUDED.v`);
        await c.query(`INSERT INTO by_bytes VALUES ('\\x0102', '${i}') ON CONFLICT (b) DO UPDATE SET v = EXCLUDED.v`);
        await c.query(`INSERT INTO by_kind VALUES ('y', 1, '${i}') ON CONFLICT (k, n) DO UPDATE SET v = EXCLUDED.v`);
      });
    }
    const keys = async (table: string) => [...new Set((await db.entries('table_name = $1', [table])).map((e) => e.object_pk))];
    expect(await keys('payment')).toEqual(['["2022-03-17T00:00:00+00:00", 16]']);
    expect(await keys('by_time')).toEqual(['2022-03-17T00:00:00.5+00:00']);
    expect(await keys('by_day')).toEqual(['2022-03-17']);
    expect(await keys('by_amount')).toEqual(['1.5']);
    expect(await keys('by_bytes')).toEqual(['\\x0102']);
    expect(await keys('by_kind')).toEqual(['["y", 1]']);
    expect([...new Set((await db.entries('table_name = $1', ['by_time'])).map((e) => e.object_repr))]).toEqual(['2022-03-17T00:00:00.5+00:00']);
  });

  test('a history lookup matches a key part given in any equivalent form of its type', async () => {
    const count = async (table: string, key: Parameters<typeof getForObject>[2]) =>
      (await getForObject(db.pool, table, key)).entries.length;
    expect(await count('payment', ['2022-03-17T01:00:00+01:00', 16])).toBe(3);
    expect(await count('payment', ['2022-03-16 17:00:00-07', '16'])).toBe(3);
    expect(await count('by_time', '2022-03-17 01:00:00.500+01')).toBe(3);
    expect(await count('by_amount', '1.500')).toBe(3);
    expect(await count('by_amount', 1.5)).toBe(3);
    expect(await count('by_day', '2022-03-17')).toBe(3);
  });
});

describe.each<CaptureMode>(['row', 'statement'])('generated columns (%s mode)', (mode) => {
  let db: TestDatabase;
  let virtualColumns = false;

  beforeAll(async () => {
    db = await createTestDatabase(`generated_${mode}`);
    const [{ version }] = await db.sql(`SELECT current_setting('server_version_num')::int AS version`);
    virtualColumns = version >= 180000;  // VIRTUAL is new in PostgreSQL 18 (and its default)
    await db.sql(`CREATE TABLE items (id int PRIMARY KEY, qty int, price numeric,
      stored numeric GENERATED ALWAYS AS (qty * price) STORED
      ${virtualColumns ? ', total numeric GENERATED ALWAYS AS (qty * price) VIRTUAL' : ''})`);
    await db.install({ mode, tables: { 'public.items': { snapshot: true } } });
  });
  afterAll(() => db.drop());

  test('stored generated columns are recorded with their values; virtual ones (PostgreSQL 18) are left out, and no write fails', async () => {
    await db.sql(`INSERT INTO items (id, qty, price) VALUES (1, 2, 3.5), (2, 1, 1)`);
    await db.sql(`UPDATE items SET qty = 3 WHERE id = 1`);
    await db.sql(`DELETE FROM items WHERE id = 2`);
    const entries = await db.entries();
    expect(entries.map((e) => [e.action, e.changes, e.snapshot])).toEqual([
      ['insert', { id: [null, 1], qty: [null, 2], price: [null, 3.5], stored: [null, 7.0] }, { id: 1, qty: 2, price: 3.5, stored: 7.0 }],
      ['insert', { id: [null, 2], qty: [null, 1], price: [null, 1], stored: [null, 1] }, { id: 2, qty: 1, price: 1, stored: 1 }],
      ['update', { qty: [2, 3], stored: [7.0, 10.5] }, { id: 1, qty: 3, price: 3.5, stored: 10.5 }],
      ['delete', { id: [2, null], qty: [1, null], price: [1, null], stored: [1, null] }, { id: 2, qty: 1, price: 1, stored: 1 }],
    ]);
    if (virtualColumns) {
      const [{ total }] = await db.sql('SELECT total FROM items WHERE id = 1');
      expect(total).toBe('10.5');
      await expect(db.install({ mode, tables: { 'public.items': { include: ['id', 'total'] } } }))
        .rejects.toThrow(/"total" of public\.items is a virtual generated column/);
    }
  });
});
