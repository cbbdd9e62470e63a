// Every query the history module sends uses an index, on a log of 1,000,000 entries: each
// statement the API issues is captured and EXPLAINed with its real parameters (reads with
// ANALYZE, so the test also bounds how many log rows each one really reads).
import type { ClientBase, QueryConfig } from 'pg';
import { flush, getEntry, getForObject, getForObjects, history, report, stateAt } from '../src';
import { allHistory, describeEntries } from '../src/history';
import { buildHistoryQuery } from '../src/history/query';
import { createTestDatabase, type TestDatabase } from './helpers';

// pg's own conversion of a query value to its text form (arrays, dates, buffers).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { prepareValue } = require('pg/lib/utils') as { prepareValue: (v: unknown) => unknown };

let db: TestDatabase;
const ENTRIES = 1_000_000;

beforeAll(async () => {
  db = await createTestDatabase('history_explain');
  await db.sql('CREATE TABLE t3 (id int PRIMARY KEY)');
  await db.install({ tables: { 'public.t3': {} } }); // the audit schema and its migrations
  // 20 tables × 2,500 objects, 1,000 actors (a fifth of entries without), a cid per 10
  // entries on half of them, 3 entries per transaction, one entry per second; a rare table first.
  await db.withClient(async (c) => {
    // Bulk load the quick way: drop the secondary indexes, insert, rebuild them from their
    // exact definitions (a sorted build is several times faster than a million inserts).
    const { rows: indexes } = await c.query<{ name: string; def: string }>(
      `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
       FROM pg_index i WHERE i.indrelid = 'auditlog.log_entry'::regclass AND NOT i.indisprimary`);
    for (const ix of indexes) await c.query(`DROP INDEX ${ix.name}`);
    await c.query(`
      INSERT INTO auditlog.log_entry (ts, txid, table_schema, table_name, object_pk, action, changes, actor, cid, db_user)
      SELECT timestamptz '2025-01-01' + i * interval '1 second',
             (1000 + i / 3)::text::xid8,
             'public', CASE WHEN i <= 100 THEN 'rare' ELSE 't' || (i % 20) END,
             CASE WHEN i % 100 = 7 THEN '[' || (i % 50000) || ', 2]' ELSE (i % 50000)::text END,
             (ARRAY['insert', 'update', 'update', 'delete'])[1 + i % 4],
             '{"qty": [1, 2]}', CASE WHEN i % 5 <> 0 THEN 'user' || (i % 1000) END,
             CASE WHEN i % 2 = 0 THEN 'req-' || (i / 10) END, 'app'
      FROM generate_series(1, ${ENTRIES}) AS i`);
    await c.query(`SET maintenance_work_mem = '256MB'`);
    for (const ix of indexes) await c.query(ix.def);
    // What autovacuum does for a real log (autosummarize): summarise BRIN ranges, gather statistics.
    await c.query('VACUUM ANALYZE auditlog.log_entry');
    expect(indexes.map((ix) => ix.name).sort()).toEqual([
      'auditlog.log_entry_actor_idx', 'auditlog.log_entry_cid_idx',
      'auditlog.log_entry_object_idx', 'auditlog.log_entry_table_idx', 'auditlog.log_entry_ts_idx', 'auditlog.log_entry_txid_idx',
    ]);
  });
}, 120_000);

afterAll(() => db.drop());

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

interface Captured {
  sql: string;
  plan: PlanNode;
  /** The generic plan of a prepared read. */
  generic?: boolean;
}

/**
 * A client that EXPLAINs every statement before running it. `generic`: for the reads the
 * module sends as named prepared statements, the plan PostgreSQL settles on after five runs,
 * made without the parameters' values.
 */
function explaining(client: ClientBase, captured: Captured[], generic: boolean): ClientBase {
  const proxy = {
    async query(query: string | QueryConfig, params?: unknown[]) {
      // The history module passes a QueryConfig (for its exact json types) or text and values.
      const text = typeof query === 'string' ? query : query.text;
      const values = typeof query === 'string' ? params : query.values;
      if (/^\s*(SELECT|WITH)\b/i.test(text)) {
        // Plain reads run twice (ANALYZE executes them); the WITH … DELETE of flush must not.
        const analyze = /^\s*SELECT\b/i.test(text) ? 'ANALYZE, ' : '';
        let explained: { rows: Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }> };
        // Only what the module sends as a named (prepared) statement gets a generic plan.
        const named = typeof query !== 'string' && query.name !== undefined;
        const asGeneric = generic && named && values !== undefined && values.length > 0;
        if (asGeneric) {
          await client.query(`PREPARE explained AS ${text}`);
          // EXECUTE takes no protocol parameters: the values go in as literals, as pg would send them.
          const args = values.map((v) => (v === null || v === undefined ? 'NULL' : client.escapeLiteral(String(prepareValue(v))))).join(', ');
          explained = await client.query(`EXPLAIN (${analyze}FORMAT JSON) EXECUTE explained(${args})`);
          await client.query('DEALLOCATE explained');
        } else {
          explained = await client.query(`EXPLAIN (${analyze}FORMAT JSON) ${text}`, values);
        }
        captured.push({ sql: text, plan: explained.rows[0]!['QUERY PLAN'][0]!.Plan, generic: asGeneric });
      }
      return typeof query === 'string' ? client.query(query, params) : client.query(query);
    },
  };
  return proxy as unknown as ClientBase;
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/** Runs fn against an explaining client; returns the plans of statements that read log_entry. */
async function plansOf(fn: (c: ClientBase) => Promise<unknown>, generic = false): Promise<Captured[]> {
  const captured: Captured[] = [];
  await db.withClient(async (client) => {
    await client.query('BEGIN'); // flush really deletes: keep the log for the other tests
    if (generic) await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
    try {
      await fn(explaining(client, captured, generic));
    } finally {
      await client.query('ROLLBACK');
    }
  });
  return captured.filter((c) => /log_entry/.test(c.sql));
}

/** Log rows a statement really read: returned by its scans of log_entry plus those it threw away. */
function rowsRead(plan: PlanNode): number {
  return nodes(plan).filter((n) => n['Relation Name'] === 'log_entry' && n['Node Type'] !== 'ModifyTable')
    .reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1)
      + (n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0), 0);
}

function expectIndexOnly(captured: Captured[], maxRowsRead: number | null): void {
  expect(captured.length).toBeGreaterThan(0);
  for (const { sql, plan } of captured) {
    const onLog = nodes(plan).filter((n) => n['Relation Name'] === 'log_entry' && n['Node Type'] !== 'ModifyTable');
    const seq = onLog.filter((n) => n['Node Type'].includes('Seq Scan'));
    expect({ sql, seqScans: seq.length }).toEqual({ sql, seqScans: 0 });
    // Every scan of the log is an index scan (bitmap heap scans are fed by one).
    const scans = nodes(plan).filter((n) => /Index|Bitmap Heap/.test(n['Node Type']));
    expect({ sql, indexed: scans.length > 0 }).toEqual({ sql, indexed: true });
    const read = rowsRead(plan);
    if (maxRowsRead !== null && read > maxRowsRead) throw new Error(`read ${read} log rows, more than ${maxRowsRead}:\n${sql}`);
  }
}

// [what, the API call, most log rows any of its reads may touch (null: no bound, e.g. a report
// counting a week)]. BRIN reads whole page ranges (128 pages, ~7,000 entries here) plus any
// range not summarised yet, so a one-hour window (3,600 entries) is allowed a few ranges: what
// matters is that the cost follows the window, not the 1,000,000 entries of the log.
const cases: Array<[string, (c: ClientBase) => Promise<unknown>, number | null]> = [
  ['one object, newest first', (c) => getForObject(c, 't3', 123), 100],
  ['one object, next page', (c) => getForObject(c, 't3', 123, { cursor: '900000', limit: 5 }), 100],
  ['one object, oldest first', (c) => history(c, { table: 't3', objectPk: 123, order: 'oldest' }), 100],
  ['one object with a composite key', (c) => getForObject(c, 't7', [107, 2]), 100],
  ['many objects', (c) => getForObjects(c, 't3', [123, 143, 163, '183']), 200],
  ['a table', (c) => history(c, { table: 't5' }), 5_000],
  ['a table that is a tiny part of the log', (c) => history(c, { table: 'rare' }), 200],
  ['a table, actions and a time window', (c) => history(c, { table: 't5', actions: ['delete'], since: '2025-01-05', until: '2025-01-05T02:00:00Z' }), 60_000],
  ['an actor', (c) => history(c, { actor: 'user42' }), 1_000],
  ['an actor, next page', (c) => history(c, { actor: 'user42', cursor: '500000' }), 1_000],
  ['an actor, a table and actions', (c) => history(c, { actor: 'user42', table: 't5', actions: ['update'] }), 1_000],
  ['a correlation id', (c) => history(c, { cid: 'req-4242' }), 100],
  ['a transaction', (c) => history(c, { txid: '5000' }), 10_000],
  ['a time window far in the past', (c) => history(c, { since: '2025-01-02T00:00:00Z', until: '2025-01-02T01:00:00Z' }), 50_000],
  ['a time window, next page', async (c) => {
    const first = await history(c, { since: '2025-01-02T00:00:00Z', until: '2025-01-02T01:00:00Z', limit: 1000 });
    return history(c, { since: '2025-01-02T00:00:00Z', until: '2025-01-02T01:00:00Z', limit: 1000, cursor: first.nextCursor });
  }, 50_000],
  ['a time window, oldest first', (c) => history(c, { since: '2025-01-08', until: '2025-01-08T01:00:00Z', order: 'oldest' }), 50_000],
  ['the whole log, newest first', (c) => history(c, {}), 200],
  ['one entry', (c) => getEntry(c, 4242), 1],
  ['state at an instant', (c) => stateAt(c, 't3', 123, '2025-01-06T00:00:00Z'), 100],
  ['a report over a week', (c) => report(c, { since: '2025-01-03', until: '2025-01-10' }), null],
  ['flush before a date', (c) => flush(c, { beforeDate: '2025-01-01T00:10:00Z', batchSize: 200 }), 20_000],
  ['flush of one table', (c) => flush(c, { beforeDate: '2025-01-01T01:00:00Z', table: 't3', batchSize: 50 }), 20_000],
];

test.each(cases)('%s uses an index', async (_name, fn, maxRowsRead) => {
  expectIndexOnly(await plansOf(fn), maxRowsRead);
});

// The plan a long-running application's connection uses from the sixth call on. A generic
// plan must not start parallel workers either: it is costed without the values, and a lookup
// that starts workers pays for it on every call (a generic plan of a time window did, on a
// partitioned log of 50,000,000 entries).
test.each(cases)('%s uses an index with its generic plan', async (_name, fn, maxRowsRead) => {
  const captured = await plansOf(fn, true);
  expectIndexOnly(captured, maxRowsRead);
  for (const { sql, plan, generic } of captured.filter((c) => c.generic)) {
    const parallel = nodes(plan).filter((n) => n['Node Type'].startsWith('Gather')).length;
    expect({ sql, parallel, generic }).toEqual({ sql, parallel: 0, generic: true });
  }
});

test('the log really holds a million entries and the queries return them', async () => {
  expect((await db.sql('SELECT count(*)::int AS n FROM auditlog.log_entry'))[0].n).toBe(ENTRIES);
  expect((await getForObject(db.pool, 't3', 123)).entries).toHaveLength(20);
  expect((await history(db.pool, { txid: '5000' })).entries).toHaveLength(3);
  expect((await history(db.pool, { cid: 'req-4242' })).entries).toHaveLength(5);
  // A window pages through exactly its entries, across pages, in either order.
  const window = { since: '2025-01-02T00:00:00Z', until: '2025-01-02T00:10:00Z', limit: 250 };
  const first = await history(db.pool, window);
  const all = await allHistory(db.pool, window);
  expect(all).toHaveLength(600);
  expect(all.slice(0, 250)).toEqual(first.entries);
  expect(all.every((e, i) => i === 0 || BigInt(e.id) < BigInt(all[i - 1]!.id))).toBe(true);
  // A plain id cursor (not one of ours) continues from that id within the window.
  const fromId = await history(db.pool, { ...window, cursor: all[99]!.id, limit: 10 });
  expect(fromId.entries.map((e) => e.id)).toEqual(all.slice(100, 110).map((e) => e.id));
  const oldest = await allHistory(db.pool, { ...window, order: 'oldest' });
  expect(oldest.map((e) => e.id)).toEqual(all.map((e) => e.id).reverse());
  expect((await describeEntries(db.pool, (await history(db.pool, { actor: 'user42', limit: 2 })).entries))[0]!.summary).toBe('qty: 1 → 2');
});

test('an actor with a table reads the actor index only, never a bitmap of every entry of the table', async () => {
  const q = buildHistoryQuery({ actor: 'user42', table: 't5', actions: ['update'] });
  const [{ 'QUERY PLAN': [top] }] = await db.sql(`EXPLAIN (ANALYZE, FORMAT JSON) ${q.text}`, q.values);
  const indexes = nodes(top.Plan as PlanNode).map((n) => (n as { 'Index Name'?: string })['Index Name']).filter((n) => n !== undefined);
  expect(indexes).toEqual(['log_entry_actor_idx']);
});
