// Event delivery benchmark: entries delivered per second, and commit→hook latency, for 1, 8 and
// 64 concurrent writers. Uses a throwaway embedded PostgreSQL unless --database-url is given
// (then it creates and drops its own database there).
//
//   npx tsx scripts/bench-events.ts [--database-url URL] [--seconds 5] [--rows-per-tx 10] [--named]
//
// "max" runs: writers insert as fast as they can (rows-per-tx rows per transaction).
// "paced" runs: 1,000 entries/s in total, one row per transaction, spread over the writers.
// Latency is measured in this process: from COMMIT returning to the writer, to the hook
// receiving the entry (so it includes the NOTIFY, the fetch and the batch hand-off). Each run
// starts from empty tables; writers, subscriber and server share this machine's CPUs.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Client, Pool } from 'pg';
import { subscribe } from '../src/events';
import { install } from '../src/install';
import { openBenchDatabase } from './lib/bench-database';

const { values } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    seconds: { type: 'string', default: '5' },
    'rows-per-tx': { type: 'string', default: '10' },
    // Store the cursor after every batch (a named subscriber) instead of keeping it in memory.
    named: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const ROWS_PER_TX = Number(values['rows-per-tx']);
const WRITER_COUNTS = [1, 8, 64];
const PACED_RATE = 1000;

interface Result {
  writers: number;
  mode: string;
  rowsPerTx: number;
  entries: number;
  perSecond: number;
  median: number;
  p99: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Every run starts from the same state: empty tables, fresh statistics, nothing to vacuum. */
async function reset(url: string): Promise<void> {
  const c = new Client(url);
  await c.connect();
  await c.query('TRUNCATE bench_items, auditlog.log_entry');
  await c.query('VACUUM ANALYZE bench_items, auditlog.log_entry');
  await c.end();
}

async function run(url: string, writers: number, paced: boolean): Promise<Result> {
  await reset(url);
  const commitAt = new Map<string, number>();
  const hookAt = new Map<string, number>();
  let firstCommit = 0;
  let lastDelivery = 0;
  const name = values.named ? `bench-${writers}-${paced ? 'paced' : 'max'}` : undefined;
  const sub = await subscribe({ connectionString: url, name, startFrom: 'now', tables: ['bench_items'] }, (entries) => {
    const now = performance.now();
    for (const e of entries) if (!hookAt.has(e.object_pk!)) hookAt.set(e.object_pk!, now);
    lastDelivery = now;
  });
  const pool = new Pool({ connectionString: url, max: writers });
  // Open every writer connection before the clock starts.
  await Promise.all(Array.from({ length: writers }, () => pool.connect())).then((cs) => cs.forEach((c) => c.release()));

  const rowsPerTx = paced ? 1 : ROWS_PER_TX;
  const start = performance.now();
  const stopAt = start + SECONDS * 1000;
  const writer = async (w: number) => {
    const interval = (1000 * writers) / PACED_RATE; // ms between this writer's transactions
    for (let i = 0; performance.now() < stopAt; i++) {
      if (paced) {
        const due = start + (w / writers) * interval + i * interval;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (performance.now() >= stopAt) break;
      }
      const { rows } = await pool.query<{ id: string }>(
        'INSERT INTO bench_items (v) SELECT g FROM generate_series(1, $1) g RETURNING id::text', [rowsPerTx]);
      const now = performance.now();
      if (firstCommit === 0) firstCommit = now;
      for (const r of rows) commitAt.set(r.id, now);
    }
  };
  await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
  const until = performance.now() + 30_000;
  while (hookAt.size < commitAt.size && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  await sub.close();
  await pool.end();
  if (hookAt.size < commitAt.size) throw new Error(`only ${hookAt.size} of ${commitAt.size} entries were delivered`);

  const latencies = [...commitAt].map(([id, t]) => Math.max(0, hookAt.get(id)! - t)).sort((a, b) => a - b);
  return {
    writers,
    mode: paced ? `paced ${PACED_RATE}/s` : 'max',
    rowsPerTx,
    entries: commitAt.size,
    perSecond: commitAt.size / ((lastDelivery - firstCommit) / 1000),
    median: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

async function main() {
  // The embedded server runs with fsync off, as the published numbers were measured.
  const db = await openBenchDatabase('auditlog_bench_events', values['database-url'], undefined, false);
  const { url: target, serverVersion: version } = db;
  try {
    const c = new Client(target);
    await c.connect();
    await c.query('CREATE TABLE bench_items (id bigserial PRIMARY KEY, v int NOT NULL)');
    await install(c, { tables: { 'public.bench_items': {} } });
    await c.end();

    const results: Result[] = [];
    for (const writers of WRITER_COUNTS) {
      for (const paced of [false, true]) {
        const r = await run(target, writers, paced);
        results.push(r);
        process.stderr.write(`writers=${r.writers} ${r.mode}: ${r.entries} entries\n`);
      }
    }
    const fmt = (n: number) => n.toFixed(1);
    console.log(`\nPostgreSQL ${version}${db.embedded ? ' (embedded, fsync off)' : ''}; Node ${process.version}; ` +
      `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}); ${SECONDS} s per run; ` +
      `${values.named ? 'named cursor (stored after every batch)' : 'in-memory cursor'}\n`);
    console.log('| writers | load | rows/tx | entries | delivered entries/s | commit→hook median (ms) | p99 (ms) |');
    console.log('|---:|---|---:|---:|---:|---:|---:|');
    for (const r of results) {
      console.log(`| ${r.writers} | ${r.mode} | ${r.rowsPerTx} | ${r.entries} | ${Math.round(r.perSecond).toLocaleString('en')} | ${fmt(r.median)} | ${fmt(r.p99)} |`);
    }
  } finally {
    await db.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
