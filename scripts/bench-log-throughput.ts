// How many log entries per second one PostgreSQL sustains: writers insert into an audited
// table as fast as they can, in both capture modes, with 1 and 100 rows per transaction; then
// (with --nats) how fast one forwarder drains the log into a JetStream stream.
//
//   npx tsx scripts/bench-log-throughput.ts [--database-url URL] [--seconds 5] [--writers 1,8,32]
//                                           [--nats nats://127.0.0.1:4222] [--forward-entries 50000]
//
// Without --database-url it starts an embedded PostgreSQL with production durability (fsync
// on); with it, it creates and drops its own database on that server. Writers, server and
// forwarder share this machine's CPUs: the numbers are what one machine sustains end to end.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Client, Pool } from 'pg';
import { forwardToNats } from '../src/forward';
import { install } from '../src/install';
import type { CaptureMode } from '../src/interfaces';
import { openBenchDatabase } from './lib/bench-database';

const { values } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    seconds: { type: 'string', default: '5' },
    writers: { type: 'string', default: '1,8,32' },
    nats: { type: 'string' },
    'forward-entries': { type: 'string', default: '50000' },
  },
});
const SECONDS = Number(values.seconds);
const WRITERS = values.writers!.split(',').map(Number);
const ROWS_PER_TX = [1, 100];
const MODES: CaptureMode[] = ['statement', 'row'];

interface Result { mode: CaptureMode; writers: number; rowsPerTx: number; entries: number; perSecond: number }

async function reset(url: string): Promise<void> {
  const c = new Client(url);
  await c.connect();
  await c.query('TRUNCATE bench_row, bench_statement, auditlog.log_entry');
  await c.query('VACUUM ANALYZE bench_row, bench_statement, auditlog.log_entry');
  await c.end();
}

async function run(url: string, mode: CaptureMode, writers: number, rowsPerTx: number): Promise<Result> {
  await reset(url);
  const pool = new Pool({ connectionString: url, max: writers });
  await Promise.all(Array.from({ length: writers }, () => pool.connect())).then((cs) => cs.forEach((c) => c.release()));
  const start = performance.now();
  const stopAt = start + SECONDS * 1000;
  await Promise.all(Array.from({ length: writers }, async () => {
    while (performance.now() < stopAt) {
      await pool.query(`INSERT INTO bench_${mode} (a, b, c) SELECT g, 'item ' || g, now() FROM generate_series(1, $1) g`, [rowsPerTx]);
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  const entries = Number((await pool.query('SELECT count(*) FROM auditlog.log_entry')).rows[0].count);
  await pool.end();
  return { mode, writers, rowsPerTx, entries, perSecond: entries / elapsed };
}

/** Entries per second from the first to the last forwarded batch of a log of `count` entries. */
async function forward(url: string, servers: string, count: number): Promise<number> {
  await reset(url);
  const c = new Client(url);
  await c.connect();
  await c.query(`INSERT INTO bench_statement (a, b, c) SELECT g, 'item ' || g, now() FROM generate_series(1, $1) g`, [count]);
  await c.end();
  const stream = `AUDITLOG_BENCH_${process.pid}`;
  let done = 0;
  let first = 0;
  let last = 0;
  const finished = new Promise<void>((resolve) => {
    void forwardToNats({ connectionString: url, servers, stream, name: 'bench', log: () => undefined }).then((f) => {
      f.on('forwarded', (b) => {
        if (first === 0) first = performance.now();
        done += b.entries;
        last = performance.now();
        if (done >= count) void f.close().then(resolve);
      });
    });
  });
  const start = performance.now();
  await finished;
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers });
  await (await jetstreamManager(nc)).streams.delete(stream);
  await nc.close();
  return count / ((last - start) / 1000);
}

async function main() {
  const db = await openBenchDatabase('auditlog_bench_throughput', values['database-url'], (l) => process.stderr.write(`${l}\n`));
  try {
    const c = new Client(db.url);
    await c.connect();
    await c.query(`CREATE TABLE bench_row (id bigserial PRIMARY KEY, a int NOT NULL, b text, c timestamptz);
                   CREATE TABLE bench_statement (LIKE bench_row INCLUDING ALL)`);
    await install(c, { tables: { 'public.bench_row': { mode: 'row' }, 'public.bench_statement': { mode: 'statement' } } });
    await c.end();
    const results: Result[] = [];
    for (const mode of MODES) {
      for (const rowsPerTx of ROWS_PER_TX) {
        for (const writers of WRITERS) {
          const r = await run(db.url, mode, writers, rowsPerTx);
          results.push(r);
          process.stderr.write(`${mode} writers=${writers} rows/tx=${rowsPerTx}: ${Math.round(r.perSecond)} entries/s\n`);
        }
      }
    }
    const load = os.loadavg()[0]!.toFixed(1);
    console.log(`\nPostgreSQL ${db.serverVersion}${db.embedded ? ' (embedded, fsync on)' : ''}; Node ${process.version}; ` +
      `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}); ${SECONDS} s per run; 1-min load average at the end ${load}\n`);
    console.log('| capture mode | writers | rows/tx | entries | entries/s |');
    console.log('|---|---:|---:|---:|---:|');
    for (const r of results) {
      console.log(`| ${r.mode} | ${r.writers} | ${r.rowsPerTx} | ${r.entries} | ${Math.round(r.perSecond).toLocaleString('en')} |`);
    }
    if (values.nats) {
      const count = Number(values['forward-entries']);
      const rate = await forward(db.url, values.nats, count);
      console.log(`\nforwardToNats: ${count} entries into a new JetStream stream (file storage) at ${Math.round(rate).toLocaleString('en')} entries/s`);
    }
  } finally {
    await db.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
