// `npm run bench:scale`: is the log flat at size? Builds a log of 1,000,000 and then
// 50,000,000 entries (generate_series, in chunks) and times, at each size, the lookups a user
// makes (object history, actor, correlation id, a time window, report over a day), audited
// insert throughput, one `maintain` run and one retention drop.
//
//   npm run bench:scale [-- --sizes 1000000,50000000] [--partitioning month|week|day|none]
//                       [--repeat 7] [--database-url URL] [--keep]
//
// Timing: wall clock (process.hrtime) around each library call, as an application sees it,
// on a warm cache: each lookup runs with --repeat different keys unmeasured, then measured;
// the median is printed (min–max in brackets). Entries span 24 months ending now, arriving in
// time order; 20 tables, 50,000 objects each, 1,000 actors, a cid per 10 entries.
// The database is dropped afterwards unless --keep (then its URL is printed, to EXPLAIN by hand).
// Numbers depend on the machine: say which one.
import { parseArgs } from 'node:util';
import { Client, Pool } from 'pg';
import { getForObject, history, install, maintain, report } from '../src';
import { validateConfig } from '../src/config/validate';
import type { AuditConfig } from '../src/interfaces';
import { ensurePartitions } from '../src/maintain';
import { ensureLookupStatistics } from '../src/maintain/statistics';
import { addPeriods, periodStart } from '../src/maintain/tree';
import { openBenchDatabase } from './lib/bench-database';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000000,50000000' },
    partitioning: { type: 'string', default: 'month' },
    repeat: { type: 'string', default: '7' },
    'database-url': { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const SIZES = args.sizes!.split(',').map((s) => Number(s.replace(/_/g, '')));
const REPEAT = Number(args.repeat);
const INTERVAL = args.partitioning === 'none' ? undefined : (args.partitioning as 'day' | 'week' | 'month');
if (SIZES.some((n) => !Number.isInteger(n) || n < 1000) || SIZES.some((n, i) => i > 0 && n <= SIZES[i - 1]!)) {
  throw new Error('--sizes must be increasing whole numbers of at least 1000, e.g. 1000000,50000000');
}
if (args.keep && !args['database-url'] && !process.env.DATABASE_URL) throw new Error('--keep needs --database-url: an embedded server stops with the script');
if (INTERVAL !== undefined && !['day', 'week', 'month'].includes(INTERVAL)) throw new Error('--partitioning must be month, week, day or none');
const CHUNK = 1_000_000;
const SPAN_MONTHS = 24;

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;

async function timeIt(label: string, runs: Array<() => Promise<unknown>>): Promise<number> {
  // Warm-up, not measured: every run once, so caches and each connection's prepared
  // statements are in the steady state a long-running application sees.
  for (const run of runs) await run();
  const times: number[] = [];
  for (const run of runs) {
    const start = process.hrtime.bigint();
    await run();
    times.push(seconds(start));
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  console.log(`  ${label.padEnd(34)} ${ms(median).padStart(10)}  [${ms(times[0]!)}–${ms(times[times.length - 1]!)}]`);
  return median;
}

async function main(): Promise<void> {
  const db = await openBenchDatabase('auditlog_bench_scale', args['database-url'] ?? process.env.DATABASE_URL);
  const client = new Client(db.url);
  await client.connect();
  const pool = new Pool({ connectionString: db.url, max: 4 });
  try {
    await client.query('CREATE TABLE items (id bigint PRIMARY KEY, qty int)');
    const config: AuditConfig = { tables: { 'public.items': {} }, ...(INTERVAL ? { partitioning: { interval: INTERVAL } } : {}) };
    await install(client, config);
    const now = (await client.query<{ now: Date }>('SELECT now() AS now')).rows[0]!.now;
    let spanStart = addPeriods(periodStart(now, 'month'), 'month', -SPAN_MONTHS);
    const fullSpanSeconds = (now.getTime() - spanStart.getTime()) / 1000;
    if (INTERVAL) {
      // Partitions for the whole span up front, as months of `maintain` runs would have made.
      const normalized = validateConfig(config);
      await client.query('BEGIN');
      for (let t = spanStart; t < now; t = addPeriods(t, INTERVAL, 1)) {
        await ensurePartitions(client, normalized.schema, { ...normalized.partitioning!, premake: 0 }, t);
      }
      await ensureLookupStatistics(client, normalized.schema);
      await client.query('COMMIT');
    }
    console.log(`bench-scale: log ${INTERVAL ? `partitioned by ${INTERVAL}` : 'not partitioned'}; sizes ${SIZES.join(', ')}; ` +
      `median of ${REPEAT} warm runs per lookup (wall clock around each call)`);
    let loaded = 0;
    let nextItem = 1;
    for (const size of SIZES) {
      const loadStart = process.hrtime.bigint();
      // Secondary indexes off while loading, rebuilt after (a sorted build beats row-by-row upkeep).
      const { rows: indexes } = await client.query<{ name: string; def: string }>(
        `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
         FROM pg_index i WHERE i.indrelid = 'auditlog.log_entry'::regclass AND NOT i.indisunique`);
      for (const ix of indexes) await client.query(`DROP INDEX ${ix.name}`);
      const toLoad = size - loaded;
      const spanSeconds = (now.getTime() - spanStart.getTime()) / 1000;
      for (let done = 0; done < toLoad; done += CHUNK) {
        const n = Math.min(CHUNK, toLoad - done);
        await client.query(`
          INSERT INTO auditlog.log_entry (ts, txid, table_schema, table_name, object_pk, action, changes, actor, cid, db_user)
          SELECT $1::timestamptz + ((g::float8 / $3) * $4) * interval '1 second',
                 ((1000 + ($5 + g) / 3))::text::xid8,
                 'public', 't' || (g % 20), (g % 50000)::text,
                 (ARRAY['insert', 'update', 'update', 'delete'])[1 + g % 4],
                 '{"qty": [1, 2]}', CASE WHEN g % 5 <> 0 THEN 'user' || (g % 1000) END,
                 CASE WHEN g % 2 = 0 THEN 'req-' || (($5 + g) / 10) END, 'bench'
          FROM generate_series($2::bigint + 1, $2::bigint + $6) AS g`,
          [spanStart, done, toLoad, spanSeconds, loaded, n]);
        process.stderr.write(`\r  loading: ${(loaded + done + n).toLocaleString('en')} of ${size.toLocaleString('en')} entries (${seconds(loadStart).toFixed(0)} s)`);
      }
      process.stderr.write(`\n  building ${indexes.length} indexes on every partition…\n`);
      await client.query(`SET maintenance_work_mem = '512MB'`);
      // A partitioned index's definition says ON ONLY (no partition indexes): build them all.
      for (const ix of indexes) await client.query(ix.def.replace(' ON ONLY ', ' ON '));
      await client.query('VACUUM ANALYZE auditlog.log_entry');
      loaded = size;
      console.log(`\n${size.toLocaleString('en')} entries (loaded and indexed in ${seconds(loadStart).toFixed(1)} s)`);

      const keys = Array.from({ length: REPEAT }, (_, i) => 1000 + i * 7919);
      await timeIt('object history (newest 100)', keys.map((k) => () => getForObject(pool, 'public.t7', k % 50000)));
      await timeIt('actor (newest 100)', keys.map((k) => () => history(pool, { actor: `user${k % 1000}`, limit: 100 })));
      await timeIt('correlation id', keys.map((k) => () => history(pool, { cid: `req-${k * 13}` })));
      const day = (i: number) => new Date(now.getTime() - (30 + i * 17) * 86400_000);
      const perDay = Math.round(size / (fullSpanSeconds / 86400));
      await timeIt(`time window (1 hour, ~${Math.round(perDay / 24).toLocaleString('en')} entries, first 100)`, keys.map((_, i) => () =>
        history(pool, { since: day(i), until: new Date(day(i).getTime() + 3600_000), limit: 100 })));
      // The log grows denser, not longer, in this script: an hour or a day at 50M holds 50 times
      // the entries of one at 1M. The same work at every size: windows that hold as many
      // entries as an hour (a day) held at the first size.
      const sameWork = SIZES[0]! / size;
      const firstPerDay = Math.round(SIZES[0]! / (fullSpanSeconds / 86400));
      if (size !== SIZES[0]) {
        await timeIt(`time window (${(60 * sameWork).toFixed(1)} min, ~${Math.round(firstPerDay / 24).toLocaleString('en')} entries)`,
          keys.map((_, i) => () => history(pool, { since: day(i), until: new Date(day(i).getTime() + 3600_000 * sameWork), limit: 100 })));
      }
      await timeIt(`report over a day (~${perDay.toLocaleString('en')} entries)`,
        keys.map((_, i) => () => report(pool, { since: day(i), until: new Date(day(i).getTime() + 86400_000) })));
      if (size !== SIZES[0]) {
        await timeIt(`report over ${(1440 * sameWork).toFixed(0)} min (~${firstPerDay.toLocaleString('en')} entries)`,
          keys.map((_, i) => () => report(pool, { since: day(i), until: new Date(day(i).getTime() + 86400_000 * sameWork) })));
      }
      // Audited inserts, one row per statement and transaction, 4 connections: entries per second.
      const inserts = 4000;
      const start = process.hrtime.bigint();
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let i = 0; i < inserts / 4; i++) await pool.query('INSERT INTO items VALUES ($1, 1)', [nextItem++]);
      }));
      console.log(`  ${'audited inserts (4 connections)'.padEnd(34)} ${Math.round(inserts / seconds(start)).toLocaleString('en').padStart(7)} entries/s`);
      if (INTERVAL) {
        await timeIt('maintain (nothing to do)', [() => maintain(client, config), () => maintain(client, config)]);
        // Retention that reaches exactly the oldest partition of the span.
        const cutoffMonths = Math.round((now.getTime() - addPeriods(spanStart, INTERVAL, 1).getTime()) / (30.44 * 86400_000));
        const retained: AuditConfig = { ...config, partitioning: { interval: INTERVAL, retention: `${cutoffMonths} months` } };
        const dropStart = process.hrtime.bigint();
        const r = await maintain(client, retained, { now });
        console.log(`  ${'retention drop'.padEnd(34)} ${ms(seconds(dropStart)).padStart(10)}  (${r.dropped.length} partition(s), ${r.droppedEntries.toLocaleString('en')} entries)`);
        loaded -= r.droppedEntries;
        spanStart = addPeriods(spanStart, INTERVAL, 1);
      }
    }
  } finally {
    await pool.end();
    await client.end();
    if (args.keep) {
      console.log(`\nkept: ${db.url}`);
      await db.keep();
    } else await db.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
