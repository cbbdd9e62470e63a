// History and events SQL are composed from sql-template-tag fragments: placeholders are
// numbered by the library, in order, one per value; the CommonJS build loads the ESM-only
// package through Node's require(esm) without warnings.
import { spawnSync } from 'node:child_process';
import { buildHistoryQuery, buildWindowQuery } from '../src/history';
import { advanceCursorSql, fetchBatchSql } from '../src/events/sql';
import { ensureBuilt, ROOT } from './cli-helpers';

function placeholders(text: string): number[] {
  return [...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
}

const filter = { schemas: ['public'], names: ['t'], actions: ['update'], actors: null };

test.each([
  ['a history page with every filter', () => buildHistoryQuery({
    table: 't', objectPks: [1, [2, 'x']], actor: 'a', cid: 'c', txid: '7', actions: ['update'], since: '2026-01-01', until: '2026-02-01',
    cursor: '10:5',
  })],
  ['a time window', () => buildWindowQuery({ since: '2026-01-01', until: '2026-02-01', actions: ['insert'] })],
  ['a batch of events', () => fetchBatchSql('auditlog', {
    horizon: '1', lastId: '2', delivered: ['3'], batchSize: 10, maxBytes: 100, onlyFinished: false, filter })],
  ['a cursor advance', () => advanceCursorSql('auditlog', {
    name: 'n', horizon: '1', delivered: [], lastId: '2', jump: true, filter, version: '0', token: 't' })],
])('%s numbers its placeholders $1..$n in order, one per value', (_label, build) => {
  const q = build();
  const used = placeholders(q.text);
  expect(used).toEqual(used.map((_n, i) => i + 1));
  expect(q.values).toHaveLength(used.length);
});

test('the built CommonJS modules load sql-template-tag (ESM) with no warning', () => {
  ensureBuilt();
  const run = spawnSync('node', ['-e', `
    const { buildHistoryQuery } = require('./dist/history');
    process.stdout.write(buildHistoryQuery({ table: 't', objectPk: 1 }).text.split('\\n')[1]);`],
  { cwd: ROOT, encoding: 'utf8' });
  expect(run).toMatchObject({ status: 0, stderr: '' });
  expect(run.stdout).toMatch(/^WHERE table_name = \$1/);
});
