// Baseline: rows older than the log get one `baseline` entry each; time travel starts there
// and says "unknown" (never null) before a row's first entry unless that entry is its insert.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { baseline, isUnknownState, logEvent, stateAt } from '../src';
import { ExactNumber } from '../src/json';
import { ensureBuilt, runCli } from './cli-helpers';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;
const MODES = ['row', 'statement'] as const;
const cli = (args: string[]) => runCli(args, { DATABASE_URL: db.url });

beforeAll(async () => {
  ensureBuilt();
  db = await createTestDatabase('history_baseline');
  for (const mode of MODES) {
    await db.sql(`CREATE TABLE old_${mode} (id int PRIMARY KEY, amount numeric, ssn text, note text)`);
    await db.sql(`INSERT INTO old_${mode} SELECT i, 1.50 * i, 'secret' || i, 'n' || i FROM generate_series(1, 5) i`);
  }
  await db.install({ tables: { 'public.old_row': { mode: 'row', mask: ['ssn'] }, 'public.old_statement': { mode: 'statement', mask: ['ssn'] } } });
}, 120_000);

afterAll(() => db.drop());

const nowPlus = (ms: number) => new Date(Date.now() + ms).toISOString();

async function entryTs(id: string, deltaMicros: number): Promise<string> {
  const [{ t }] = await db.sql(`SELECT to_char((ts + make_interval(secs => $2::float8 / 1e6)) AT TIME ZONE 'UTC',
    'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t FROM auditlog.log_entry WHERE id = $1`, [id, deltaMicros]);
  return t as string;
}

describe.each(MODES)('%s capture', (mode) => {
  const table = `old_${mode}`;

  test('before a baseline a row older than the log is unknown, never null; the CLI exits 3', async () => {
    const state = await stateAt(db.pool, table, 1, nowPlus(1000));
    expect(isUnknownState(state)).toBe(true);
    expect(state).toMatchObject({ unknown: true, reason: 'no-entries', earliest: null });
    const r = await cli(['history', table, '1', '--at', nowPlus(1000)]);
    expect(r.code).toBe(3);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/state of old_\w+ 1 at .* is unknown: .*auditlog baseline/);
  });

  test('baseline records each row once, whole and masked, in batches with progress; a second run adds nothing', async () => {
    await db.sql(`INSERT INTO ${table} VALUES (6, 6, 'x', 'inserted after install')`); // has an entry: no baseline
    await db.sql(`UPDATE ${table} SET note = 'changed' WHERE id = 5`); // likewise
    const r = await cli(['baseline', '--table', table, '--batch-size', '2', '--yes']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out.trim().split('\n')).toEqual([
      `public.${table}: 2 row(s) read, 2 baseline entries recorded`,
      `public.${table}: 4 row(s) read, 4 baseline entries recorded`,
      `public.${table}: 6 row(s) read, 4 baseline entries recorded`,
      'done: 4 baseline entries recorded in 1 table(s)',
    ]);
    const entries = await db.entries(`table_name = $1 AND action = 'baseline'`, [table]);
    expect(entries.map((e) => e.object_pk)).toEqual(['1', '2', '3', '4']);
    expect(entries[0]!.changes).toEqual({ id: [null, 1], amount: [null, 1.5], ssn: [null, '[masked]'], note: [null, 'n1'] });
    expect(JSON.stringify(entries)).not.toContain('secret');

    const again = await baseline(db.pool, { table });
    expect(again).toEqual({ tables: [{ table: `public.${table}`, scanned: 6, recorded: 0 }], recorded: 0 });
  });

  test('time travel starts at the baseline: the row then and after, unknown before it', async () => {
    const [b] = await db.entries(`table_name = $1 AND action = 'baseline' AND object_pk = '2'`, [table]);
    await db.sql(`UPDATE ${table} SET amount = 99999999999999999999.01 WHERE id = 2`);
    expect(await stateAt(db.pool, table, 2, await entryTs(b!.id, 0)))
      .toEqual({ id: 2, amount: new ExactNumber('3.00'), ssn: '[masked]', note: 'n2' });
    expect(await stateAt(db.pool, table, 2, nowPlus(1000)))
      .toEqual({ id: 2, amount: new ExactNumber('99999999999999999999.01'), ssn: '[masked]', note: 'n2' });
    const before = await stateAt(db.pool, table, 2, await entryTs(b!.id, -1));
    expect(before).toMatchObject({ unknown: true, reason: 'before-baseline', earliest: { id: b!.id, action: 'baseline' } });
    const r = await cli(['history', table, '2', '--at', await entryTs(b!.id, -1)]);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/is unknown: that is before its baseline entry #\d+/);

    // A row whose first entry is an update (it existed, unrecorded): unknown before it.
    const [u] = await db.entries(`table_name = $1 AND action = 'update' AND object_pk = '5'`, [table]);
    expect(await stateAt(db.pool, table, 5, await entryTs(u!.id, -1))).toMatchObject({ reason: 'before-first-entry' });
    // A row created by an insert: null (did not exist) before it.
    const [i] = await db.entries(`table_name = $1 AND action = 'insert' AND object_pk = '6'`, [table]);
    expect(await stateAt(db.pool, table, 6, await entryTs(i!.id, -1))).toBeNull();
    expect((await cli(['history', table, '6', '--at', await entryTs(i!.id, -1)])).out.trim()).toBe('null');
  });
});

test('nobody can forge a baseline through logEvent or log_event()', async () => {
  await expect(logEvent(db.pool, { action: 'baseline', table: 'old_row', objectPk: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  await expect(db.sql(`SELECT auditlog.log_event('baseline', 'public', 'old_row', '1'::jsonb)`)).rejects.toThrow(/reserved/);
});

test('install --baseline records every audited table; baseline of a table not audited exits 1', async () => {
  await db.sql('CREATE TABLE later (id int PRIMARY KEY, v text); INSERT INTO later VALUES (1, \'a\'), (2, \'b\')');
  const dir = mkdtempSync('/tmp/auditlog-baseline-');
  writeFileSync(`${dir}/auditlog.config.json`, JSON.stringify({ tables: { 'public.old_row': { mode: 'row', mask: ['ssn'] }, 'public.old_statement': { mode: 'statement', mask: ['ssn'] }, 'public.later': {} } }));
  const r = await runCli(['install', '--baseline'], { DATABASE_URL: db.url }, { cwd: dir });
  expect(r).toMatchObject({ code: 0 });
  expect(r.out).toContain('baseline public.later: 2 row(s) read, 2 baseline entries recorded');
  expect(r.out).toContain('baseline: 2 entries recorded');
  const missing = await cli(['baseline', '--table', 'nosuch', '--yes']);
  expect(missing.code).toBe(1);
  expect(missing.err).toMatch(/public.nosuch is not audited/);
});
