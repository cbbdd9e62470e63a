// What is read back is what was stored: numeric, bigint and json(b) numbers keep every digit
// through history(), stateAt(), describeEntry(), the CLI (text, --json, --at) and revert().
import fc from 'fast-check';
import { types } from 'pg';
import { allHistory, describeEntries, revert, stateAt } from '../src';
import { ExactNumber, parseExactJson, stringifyExactJson } from '../src/json';
import { ensureBuilt, runCli } from './cli-helpers';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;
const MODES = ['row', 'statement'] as const;

beforeAll(async () => {
  ensureBuilt();
  db = await createTestDatabase('history_exact');
  for (const mode of MODES) {
    await db.sql(`CREATE TABLE exact_${mode} (id int PRIMARY KEY, n numeric, b bigint, j jsonb, js json, f numeric(10, 1))`);
  }
  await db.install({ tables: { 'public.exact_row': { mode: 'row' }, 'public.exact_statement': { mode: 'statement' } } });
}, 120_000);

afterAll(() => db.drop());

const cli = (args: string[]) => runCli(args, { DATABASE_URL: db.url });

describe.each(MODES)('%s capture', (mode) => {
  const table = `exact_${mode}`;

  test('the issue\'s values come back with their digits from history(), stateAt(), describe, the CLI and revert', async () => {
    await db.sql(`INSERT INTO ${table} VALUES (1, 99999999999999999999.9999999999, -9223372036854775808,
      '{"x": 1.000000000000000000001, "y": [1.0, 2]}', '123456789012345678901234567890', 1.0)`);
    await db.sql(`UPDATE ${table} SET n = 1, b = 9223372036854775807, f = 2 WHERE id = 1`);

    const [update, insert] = await allHistory(db.pool, { table, objectPk: 1 });
    expect(insert!.changes).toEqual({
      id: [null, 1],
      n: [null, new ExactNumber('99999999999999999999.9999999999')],
      b: [null, new ExactNumber('-9223372036854775808')],
      j: [null, { x: new ExactNumber('1.000000000000000000001'), y: [new ExactNumber('1.0'), 2] }],
      js: [null, new ExactNumber('123456789012345678901234567890')],
      f: [null, new ExactNumber('1.0')],
    });
    expect(update!.changes!.b).toEqual([new ExactNumber('-9223372036854775808'), new ExactNumber('9223372036854775807')]);

    const [{ t: insertedAt }] = await db.sql(
      `SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t FROM auditlog.log_entry WHERE id = $1`, [insert!.id]);
    const before = await stateAt(db.pool, table, 1, insertedAt as string);
    expect(stringifyExactJson(before)).toBe('{"id":1,"n":99999999999999999999.9999999999,"b":-9223372036854775808,' +
      '"j":{"x":1.000000000000000000001,"y":[1.0,2]},"js":123456789012345678901234567890,"f":1.0}');

    const [described] = await describeEntries(db.pool, [update!]);
    expect(described!.summary).toContain('n: 99999999999999999999.9999999999 → 1');

    const json = await cli(['history', table, '1', '--json']);
    expect(json).toMatchObject({ code: 0, err: '' });
    expect(json.out).toContain('"b": [\n        null,\n        -9223372036854775808\n      ]');
    expect(json.out).toContain('99999999999999999999.9999999999');
    expect(json.out).toContain('123456789012345678901234567890');
    expect(json.out).toContain('1.000000000000000000001');
    expect(json.out).toMatch(/"f": \[\n\s+null,\n\s+1\.0\n/);

    const text = await cli(['history', table, '1']);
    expect(text.out).toContain('b: -9223372036854775808 → 9223372036854775807');
    const at = await cli(['history', table, '1', '--at', insertedAt as string]);
    expect(at.out).toContain('"n": 99999999999999999999.9999999999');
    const atNow = await cli(['history', table, '1', '--at', new Date(Date.now() + 60_000).toISOString()]);
    expect(atNow.out).toContain('"b": 9223372036854775807');

    // revert() writes the old values back exactly (they never leave SQL).
    await revert(db.pool, update!.id);
    const [row] = await db.sql(`SELECT n::text, b::text, f::text FROM ${table} WHERE id = 1`);
    expect(row).toEqual({ n: '99999999999999999999.9999999999', b: '-9223372036854775808', f: '1.0' });
  });
});

/** A numeric literal: sign, up to 1000 integer digits, a fraction of up to 1000 digits. */
const numericText = fc.tuple(
  fc.boolean(),
  fc.stringMatching(/^[1-9][0-9]{0,999}$|^0$/),
  fc.option(fc.stringMatching(/^[0-9]{1,1000}$/), { nil: undefined }),
).map(([neg, int, frac]) => `${neg && (int !== '0' || /[1-9]/.test(frac ?? '')) ? '-' : ''}${int}${frac === undefined ? '' : `.${frac}`}`);

const bigintText = fc.oneof(
  fc.constantFrom('-9223372036854775808', '9223372036854775807', '0', '9007199254740993', '-9007199254740993'),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
);

/** Nested jsonb: arrays and one-key objects (jsonb keeps their order), numbers as numeric text. */
const jsonbText = fc.letrec<{ v: string }>((tie) => ({
  v: fc.oneof({ depthSize: 'small' },
    numericText.map((t) => t.slice(0, 120)).filter((t) => !t.endsWith('.') && t !== '-'),
    fc.array(tie('v'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
    tie('v').map((inner) => `{"k":${inner}}`)),
})).v;

test('property: random numerics, bigints and nested jsonb numbers round-trip through history() and history --json', async () => {
  let id = 100;
  const seen: Array<{ id: number; mode: string; n: string; b: string; j: string }> = [];
  await fc.assert(fc.asyncProperty(numericText, bigintText, jsonbText, fc.constantFrom(...MODES), async (n, b, j, mode) => {
    id += 1;
    await db.sql(`INSERT INTO exact_${mode} (id, n, b, j) VALUES ($1, $2::numeric, $3::bigint, $4::jsonb)`, [id, n, b, j]);
    const [stored] = await db.sql(`SELECT n::text AS n, b::text AS b, replace(j::text, ' ', '') AS j FROM exact_${mode} WHERE id = $1`, [id]);
    const [entry] = await allHistory(db.pool, { table: `exact_${mode}`, objectPk: id });
    const changes = entry!.changes!;
    expect(stringifyExactJson(changes.n![1])).toBe(stored.n);
    expect(stringifyExactJson(changes.b![1])).toBe(stored.b);
    expect(stringifyExactJson(changes.j![1])).toBe(stored.j);
    if (seen.length < 4) seen.push({ id, mode, ...stored });
    return true;
  }), { numRuns: 40 });

  // The CLI prints the same digits (a process per object: four of the generated rows).
  for (const s of seen) {
    const r = await cli(['history', `exact_${s.mode}`, String(s.id), '--json']);
    expect(r.code).toBe(0);
    const [entry] = parseExactJson(r.out) as Array<{ changes: Record<string, [unknown, unknown]> }>;
    expect(stringifyExactJson(entry!.changes.n![1])).toBe(s.n);
    expect(stringifyExactJson(entry!.changes.b![1])).toBe(s.b);
    expect(stringifyExactJson(entry!.changes.j![1])).toBe(s.j);
    expect(r.out).toContain(s.n);
  }
}, 120_000);

test('pg\'s global type parsers are left as the application set them', async () => {
  const jsonb = types.getTypeParser(3802, 'text');
  await allHistory(db.pool, { table: 'exact_row', limit: 1 });
  expect(types.getTypeParser(3802, 'text')).toBe(jsonb);
  const { rows: [r] } = await db.pool.query(`SELECT '{"a": 12345678901234567890}'::jsonb AS v`);
  expect(r.v.a).toBe(12345678901234567000); // the application's JSON.parse, unchanged
});
