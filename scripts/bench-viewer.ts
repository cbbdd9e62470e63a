// Viewer benchmark: server time of the list, each filter, a text search, an entry and an
// object's page on a log of --entries entries (default 10,000,000), built with
// generate_series straight into auditlog.log_entry (no triggers: this measures reading).
//
//   npx tsx scripts/bench-viewer.ts [--entries 10000000] [--database-url URL] [--runs 5]
//
// The log is skewed like a real one: three tables, one of which (items) was only written in
// the oldest tenth of the log; 1,000 actors; five entries per correlation id; a custom verb
// ("export") in 0.1 % of entries, "delete" in 4 %; an hour-long window a month back.
// Timings are the Server-Timing the viewer reports (request in → response written), median
// and worst of --runs runs after one warm-up, for the HTML page (it reads more than the API).
import { parseArgs } from 'node:util';
import { Client, Pool } from 'pg';
import { install } from '../src/install';
import { serveViewer } from '../src/viewer/server';
import { openBenchDatabase } from './lib/bench-database';

const { values } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    entries: { type: 'string', default: '10000000' },
    runs: { type: 'string', default: '5' },
  },
});
const N = Number(values.entries);
const RUNS = Number(values.runs);
if (!Number.isInteger(N) || N < 10_000) throw new Error('--entries must be an integer of at least 10000');

const log = (line: string) => process.stderr.write(`${line}\n`);

async function build(url: string): Promise<void> {
  const c = new Client(url);
  await c.connect();
  try {
    await c.query(`CREATE TABLE users (id int PRIMARY KEY, name text);
                   CREATE TABLE orders (id int PRIMARY KEY, total numeric);
                   CREATE TABLE items (id int PRIMARY KEY, qty int)`);
    await install(c, { tables: { 'public.users': { objectRepr: 'name', mapping: { name: 'Name' } }, 'public.orders': {}, 'public.items': {} } });
    const started = Date.now();
    // In chunks of a million, so progress shows and no single statement holds everything.
    for (let from = 1; from <= N; from += 1_000_000) {
      const to = Math.min(N, from + 999_999);
      await c.query(`
        INSERT INTO auditlog.log_entry (ts, txid, table_schema, table_name, object_pk, object_repr, action, changes,
                                        actor, cid, remote_addr, db_user, application_name)
        SELECT timestamptz '2026-01-01' + (i::float8 / $1) * interval '90 days',
               (1000 + i / 3)::text::xid8,
               'public', t.name, (i % 100000)::text,
               CASE WHEN t.name = 'users' THEN 'user ' || (i % 100000) END,
               CASE WHEN i % 1000 = 7 THEN 'export' WHEN i % 25 = 3 THEN 'delete' WHEN i % 5 = 1 THEN 'insert' ELSE 'update' END,
               jsonb_build_object('name', jsonb_build_array('before ' || i, 'after ' || i), 'total', jsonb_build_array(i, i + 0.5)),
               CASE WHEN i % 10 = 0 THEN NULL ELSE 'user' || (i % 1000) || '@example.com' END,
               'req-' || (i / 5), '10.0.0.1', 'app', 'bench'
        FROM generate_series($2::bigint, $3::bigint) AS i,
             LATERAL (SELECT CASE WHEN i < $1 / 10 AND i % 4 = 0 THEN 'items' WHEN i % 3 = 0 THEN 'orders' ELSE 'users' END AS name) AS t`,
      [N, from, to]);
      log(`  ${to.toLocaleString('en')} entries (${Math.round((Date.now() - started) / 1000)} s)`);
    }
    await c.query('VACUUM (ANALYZE) auditlog.log_entry');
    await c.query(`SELECT brin_summarize_new_values('auditlog.log_entry_ts_idx')`);
    const { rows } = await c.query(`SELECT pg_size_pretty(pg_total_relation_size('auditlog.log_entry')) AS size`);
    log(`built ${N.toLocaleString('en')} entries in ${Math.round((Date.now() - started) / 1000)} s (${rows[0].size} with indexes)`);
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  const db = await openBenchDatabase('bench_viewer', values['database-url'], log, false);
  const pool = new Pool({ connectionString: db.url, max: 2 });
  pool.on('error', () => undefined); // idle connections end when the database is dropped
  let server;
  try {
    log(`PostgreSQL ${db.serverVersion}${db.embedded ? ' (embedded)' : ''}: building the log`);
    await build(db.url);
    server = await serveViewer({ pool, port: 0, live: false, log });
    const base = server.url.replace(/\/$/, '');
    const mid = Math.floor(N / 2);
    const { rows: [midRow] } = await pool.query(`SELECT id, txid::text, cid, actor FROM auditlog.log_entry WHERE id = $1`, [mid + 1]);
    const windowStart = new Date(Date.parse('2026-01-01T00:00:00Z') + 60 * 86400_000).toISOString();
    const windowEnd = new Date(Date.parse(windowStart) + 3600_000).toISOString();
    const recent = new Date(Date.parse('2026-01-01T00:00:00Z') + 89 * 86400_000).toISOString();
    const firstPage = await (await fetch(`${base}/api/entries?limit=50`)).json() as { nextCursor: string };
    const cases: Array<[string, string]> = [
      ['list (newest 50)', '/'],
      ['list, page 2 (cursor)', `/?cursor=${firstPage.nextCursor}`],
      ['table=users (common)', '/?table=users'],
      ['table=items (only in the oldest tenth)', '/?table=items'],
      ['action=update (common)', '/?action=update'],
      ['action=delete (4 %)', '/?action=delete'],
      ['action=export (0.1 %, custom verb)', '/?action=export'],
      ['actor', `/?actor=${encodeURIComponent(midRow.actor ?? 'user1@example.com')}`],
      ['actor + table + action', `/?actor=${encodeURIComponent(midRow.actor ?? 'user1@example.com')}&table=orders&action=update`],
      ['cid', `/?cid=${encodeURIComponent(midRow.cid)}`],
      ['txid', `/?txid=${midRow.txid}`],
      ['since + until (an hour, a month back)', `/?since=${windowStart}&until=${windowEnd}`],
      ['since (the last day)', `/?since=${recent}`],
      ['q (text, matches often)', '/?q=user%204242'],
      ['q (text, no match: one scan window)', '/?q=nothing-matches'],
      ['q + actor', `/?q=user&actor=${encodeURIComponent(midRow.actor ?? 'user1@example.com')}`],
      ['entry page', `/entries/${mid}`],
      ['object page (timeline + state now)', '/objects/public.users/4242'],
      ['object page, state at an instant', `/objects/public.users/4242?at=${windowStart}`],
      ['API: /api/entries?table=orders', '/api/entries?table=orders'],
      ['API: /api/objects/…?at=', `/api/objects/public.users/4242?at=${windowStart}`],
    ];
    const rows: Array<{ case: string; median: number; worst: number; status: number }> = [];
    for (const [label, path] of cases) {
      const times: number[] = [];
      let status = 0;
      for (let run = 0; run <= RUNS; run++) {
        const res = await fetch(`${base}${path}`);
        await res.arrayBuffer();
        status = res.status;
        const timing = /app;dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '');
        if (run > 0) times.push(Number(timing?.[1] ?? NaN));
      }
      times.sort((a, b) => a - b);
      rows.push({ case: label, median: times[Math.floor(times.length / 2)]!, worst: times[times.length - 1]!, status });
    }
    const width = Math.max(...rows.map((r) => r.case.length));
    console.log(`\nViewer server time on ${N.toLocaleString('en')} entries (PostgreSQL ${db.serverVersion}), ms; median and worst of ${RUNS}`);
    console.log(`${'case'.padEnd(width)}  median   worst  status`);
    for (const r of rows) {
      console.log(`${r.case.padEnd(width)}  ${r.median.toFixed(1).padStart(6)}  ${r.worst.toFixed(1).padStart(6)}  ${r.status}`);
    }
  } finally {
    await server?.close();
    await pool.end();
    await db.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
