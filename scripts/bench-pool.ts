// npm run bench:pool [-- --queries N --transactions N]: cost of auditPool() against the bare
// pg.Pool, per single statement and per transaction (BEGIN, 2 writes, COMMIT), with and without
// an ambient context. Round trips are counted from the server's ReadyForQuery messages.
// DATABASE_URL: a server to use; otherwise an embedded PostgreSQL is started.
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import { auditPool, install, runWithAuditContext } from '../src';
import { openBenchDatabase } from './lib/bench-database';

const { values: args } = parseArgs({
  options: { queries: { type: 'string', default: '2000' }, transactions: { type: 'string', default: '500' } },
});
const QUERIES = Number(args.queries);
const TRANSACTIONS = Number(args.transactions);

async function main() {
  const bench = await openBenchDatabase('bench_pool', process.env.DATABASE_URL, console.log, false);
  let trips = 0;
  const raw = new Pool({ connectionString: bench.url, max: 1 });
  raw.on('connect', (c) => (c as unknown as { connection: NodeJS.EventEmitter }).connection.on('readyForQuery', () => { trips++; }));
  const audited = auditPool(raw);
  try {
    await raw.query('CREATE TABLE bench_items (id serial PRIMARY KEY, n int)');
    await raw.query('SELECT 1');
    const client = await raw.connect();
    await install(client, { tables: { 'public.bench_items': {} } });
    client.release();

    const single = (pool: Pool) => pool.query('INSERT INTO bench_items (n) VALUES ($1)', [1]);
    const transaction = async (pool: Pool) => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        await c.query('INSERT INTO bench_items (n) VALUES ($1)', [1]);
        await c.query('UPDATE bench_items SET n = n + 1 WHERE id = $1', [1]);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
    };
    const measure = async (label: string, n: number, fn: () => Promise<unknown>) => {
      for (let i = 0; i < Math.min(50, n); i++) await fn(); // warm up
      const t0 = trips;
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await fn();
      const us = Number(process.hrtime.bigint() - start) / 1000 / n;
      return { label, us, trips: (trips - t0) / n };
    };
    const ctx = { actor: 'bench', cid: 'bench-1', data: { route: '/bench' } };
    const rows = [
      await measure('statement  bare pool', QUERIES, () => single(raw)),
      await measure('statement  auditPool, no context', QUERIES, () => single(audited)),
      await measure('statement  auditPool, context', QUERIES, () => runWithAuditContext(ctx, () => single(audited))),
      await measure('transaction bare pool', TRANSACTIONS, () => transaction(raw)),
      await measure('transaction auditPool, no context', TRANSACTIONS, () => transaction(audited)),
      await measure('transaction auditPool, context', TRANSACTIONS, () => runWithAuditContext(ctx, () => transaction(audited))),
    ];
    console.log(`PostgreSQL ${bench.serverVersion}${bench.embedded ? ' (embedded)' : ''}; ${QUERIES} statements, ${TRANSACTIONS} transactions, one connection`);
    console.log('| case | µs each | round trips each | vs bare |');
    console.log('|---|---:|---:|---:|');
    for (const r of rows) {
      const bare = r.label.startsWith('statement') ? rows[0]! : rows[3]!;
      console.log(`| ${r.label} | ${r.us.toFixed(0)} | ${r.trips.toFixed(2)} | ${(r.us / bare.us).toFixed(2)}× |`);
    }
  } finally {
    await raw.end();
    await bench.close();
  }
}
main().catch((err) => { console.error(err); process.exit(1); });
