// `npm run bench`: what auditing costs, measured against no audit in the same run.
//
//   npm run bench [-- --database-url URL] [--large] [--reps 3] [--seconds 5] [--context]
//
// One 8-column table per variant in a fresh database: no audit; two reference triggers, the
// floors the issue measured public audits against (a naive row trigger storing to_jsonb(OLD)
// and to_jsonb(NEW), a naive statement trigger storing to_jsonb of each transition-table row,
// both into a log table without indexes); pg-auditlog in row mode and in statement mode.
// Bulk INSERT / UPDATE (one column) / DELETE of 100k rows (1M with --large), single-row UPDATE
// and INSERT transactions from 2, 8 and 16 clients (pgbench when installed, else Node clients;
// `--clients 2,8`), the round-trip overhead of withAuditSession(), and audit bytes on disk per
// update entry. During the runs with 8 or more clients a side connection samples the wait
// events of the writing backends every 10 ms (pg_stat_activity), printed per variant.
// `--context`: each single-row transaction first sets what withAuditSession() and the
// middleware set (actor, cid, client address, request data), in every variant, so the ratios
// include what capture spends reading them (pgbench only).
// Repetitions are interleaved (the variant order rotates), and each ratio is taken against the
// baseline of the same repetition; the table shows medians with min–max.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { Client, Pool } from 'pg';
import { install, withAuditSession } from '../src';
import { openBenchDatabase } from './lib/bench-database';

type Variant = 'none' | 'naive_row' | 'naive_statement' | 'row' | 'statement';
const VARIANTS: Variant[] = ['none', 'naive_row', 'naive_statement', 'row', 'statement'];
const TABLE: Record<Variant, string> = {
  none: 't_none', naive_row: 't_naive_row', naive_statement: 't_naive_statement', row: 't_row', statement: 't_statement',
};
const HEADING: Record<Variant, string> = {
  none: 'no audit', naive_row: 'naive row trigger (reference)', naive_statement: 'naive statement trigger (reference)',
  row: 'pg-auditlog row mode', statement: 'pg-auditlog statement mode',
};
const execFileAsync = promisify(execFile);
const byVariant = <T>(make: () => T) => Object.fromEntries(VARIANTS.map((v) => [v, make()])) as Record<Variant, T>;

/** The reference triggers: what the issue calls naive, with a log table that has no index. */
const NAIVE_SQL = `
CREATE TABLE naive_log (old_row jsonb, new_row jsonb);
CREATE FUNCTION naive_row_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO naive_log VALUES (CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$;
CREATE TRIGGER naive AFTER INSERT OR UPDATE OR DELETE ON t_naive_row FOR EACH ROW EXECUTE FUNCTION naive_row_capture();
CREATE FUNCTION naive_statement_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO naive_log SELECT NULL, to_jsonb(n) FROM new_rows n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO naive_log SELECT to_jsonb(o), to_jsonb(n) FROM old_rows o JOIN new_rows n USING (id);
  ELSE
    INSERT INTO naive_log SELECT to_jsonb(o), NULL FROM old_rows o;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER naive_insert AFTER INSERT ON t_naive_statement REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION naive_statement_capture();
CREATE TRIGGER naive_update AFTER UPDATE ON t_naive_statement REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION naive_statement_capture();
CREATE TRIGGER naive_delete AFTER DELETE ON t_naive_statement REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION naive_statement_capture();
`;

const { values: args } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    large: { type: 'boolean' },
    reps: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    'skip-tps': { type: 'boolean' },
    clients: { type: 'string', default: '2,8,16' },
    'skip-bulk': { type: 'boolean' },
    'skip-session': { type: 'boolean' },
    context: { type: 'boolean' },
  },
});
const ROWS = args.large ? 1_000_000 : 100_000;
const REPS = Number(args.reps);
const SECONDS = Number(args.seconds);
const CLIENTS = args.clients.split(',').map(Number);
/** Runs with at least this many clients sample wait events. */
const SAMPLE_FROM = 8;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number, digits = 2) => x.toFixed(digits);
const log = (line: string) => process.stderr.write(`${line}\n`);

function rotate<T>(xs: T[], by: number): T[] {
  return xs.map((_, i) => xs[(i + by) % xs.length]!);
}

async function timed(client: Client, sql: string): Promise<number> {
  const start = process.hrtime.bigint();
  await client.query(sql);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function findPgbench(): string | null {
  const onPath = spawnSync('sh', ['-c', 'command -v pgbench'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  for (const v of readdirSync(root).sort().reverse()) {
    const p = path.join(root, v, 'bin', 'pgbench');
    if (existsSync(p)) return p;
  }
  return null;
}

async function main(): Promise<void> {
  const db = await openBenchDatabase('auditlog_bench', args['database-url'] ?? process.env.DATABASE_URL, log);
  const { url, serverVersion: version } = db;
  const client = new Client(url);
  await client.connect();

  try {
    for (const v of VARIANTS) {
      await client.query(`CREATE TABLE ${TABLE[v]} (
        id int PRIMARY KEY, a int, b int, c text, d text, e numeric(12, 2), f timestamptz, g boolean)`);
      await client.query(`CREATE SEQUENCE ${TABLE[v]}_ids START ${ROWS + 1}`);
    }
    await install(client, { tables: { 'public.t_row': { mode: 'row' }, 'public.t_statement': { mode: 'statement' } } });
    await client.query(NAIVE_SQL);

    // ---- bulk statements --------------------------------------------------------------
    const bulk: Record<string, Record<Variant, number[]>> = {};
    const bytes = byVariant((): number[] => []);
    const record = (w: string, v: Variant, ms: number) => {
      bulk[w] ??= byVariant(() => []);
      bulk[w]![v].push(ms);
    };
    const logTable = (v: Variant) => (v.startsWith('naive') ? 'naive_log' : 'auditlog.log_entry');
    const logSize = async (v: Variant) => Number((await client.query(`SELECT pg_total_relation_size($1) AS s`, [logTable(v)])).rows[0].s);
    for (let rep = 0; rep < (args['skip-bulk'] ? 0 : REPS); rep++) {
      for (const v of rotate(VARIANTS, rep)) {
        const t = TABLE[v];
        log(`rep ${rep + 1}/${REPS}: bulk statements on ${v}`);
        await client.query(`TRUNCATE ${t}`);
        await client.query('TRUNCATE auditlog.log_entry, naive_log');
        await client.query('CHECKPOINT');
        record('insert', v, await timed(client, `INSERT INTO ${t}
          SELECT i, i, i, 'c' || i, md5(i::text), i / 100.0, now(), i % 2 = 0 FROM generate_series(1, ${ROWS}) i`));
        await client.query(`VACUUM ANALYZE ${t}`);
        await client.query(`VACUUM ${logTable(v)}`);
        const before = await logSize(v);
        await client.query('CHECKPOINT');
        record('update', v, await timed(client, `UPDATE ${t} SET b = b + 1`));
        if (v !== 'none') bytes[v].push(((await logSize(v)) - before) / ROWS);
        await client.query('CHECKPOINT');
        record('delete', v, await timed(client, `DELETE FROM ${t}`));
      }
    }

    // ---- single-row transactions ------------------------------------------------------
    const tps: Record<string, Record<Variant, number[]>> = {};
    const waits: Record<string, Record<Variant, Map<string, number>>> = {};
    const walPerTx: Record<string, Record<Variant, number[]>> = {};
    const walLsn = async () => (await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
    const pgbench = findPgbench();
    if (!args['skip-tps']) {
      for (const v of VARIANTS) {
        await client.query(`INSERT INTO ${TABLE[v]} SELECT i, i, i, 'c' || i, md5(i::text), i / 100.0, now(), true FROM generate_series(1, ${ROWS}) i`);
        await client.query(`VACUUM ANALYZE ${TABLE[v]}`);
      }
      if (args.context && !pgbench) throw new Error('--context needs pgbench (apt-get install postgresql-client)');
      const dir = mkdtempSync(path.join(os.tmpdir(), 'auditlog-bench-'));
      // What withAuditSession() sets, transaction-locally, before the write.
      const withContext = (sql: string) => args.context
        ? `BEGIN;\nSELECT set_config('auditlog.actor', 'user' || (:id % 1000), true), set_config('auditlog.cid', 'req-' || :id, true), `
          + `set_config('auditlog.remote_addr', '203.0.113.9', true), set_config('auditlog.data', '{"method":"PUT","route":"/items/{id}"}', true);\n`
          + `${sql};\nEND`
        : sql;
      const sqlFor = (op: string, t: string) => op === 'update'
        ? `UPDATE ${t} SET b = b + 1 WHERE id = $1`
        : `INSERT INTO ${t} VALUES (nextval('${t}_ids'), 1, 2, 'c', 'd', 1.5, now(), true)`;
      for (let rep = 0; rep < REPS; rep++) {
        for (const clients of CLIENTS) {
          for (const op of ['update', 'insert']) {
            for (const v of rotate(VARIANTS, rep)) {
              const key = `${op}:${clients}`;
              tps[key] ??= byVariant(() => []);
              log(`rep ${rep + 1}/${REPS}: single-row ${op}, ${clients} clients, ${v}`);
              await client.query('CHECKPOINT');
              const sampler = clients >= SAMPLE_FROM ? await sampleWaits(url) : undefined;
              const lsn = await walLsn();
              const rate = pgbench
                ? await runPgbench(pgbench, url, dir, withContext(sqlFor(op, TABLE[v]).replace('$1', ':id')), clients)
                : await runNodeClients(url, sqlFor(op, TABLE[v]), clients);
              tps[key]![v].push(rate);
              const { rows: [wal] } = await client.query<{ bytes: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1) AS bytes', [lsn]);
              walPerTx[key] ??= byVariant(() => []);
              walPerTx[key]![v].push(Number(wal!.bytes) / (rate * SECONDS));
              if (sampler) {
                waits[key] ??= byVariant(() => new Map());
                for (const [w, n] of await sampler.stop()) waits[key]![v].set(w, (waits[key]![v].get(w) ?? 0) + n);
              }
            }
          }
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }

    // ---- withAuditSession round trip --------------------------------------------------
    const pool = new Pool({ connectionString: url, max: 1 });
    pool.on('error', () => undefined); // an idle connection closed by the server at the end
    const plain: number[] = [];
    const session: number[] = [];
    const N = 2000;
    for (let rep = 0; rep < (args['skip-session'] ? 0 : REPS); rep++) {
      log(`rep ${rep + 1}/${REPS}: withAuditSession round trip`);
      for (const which of rep % 2 ? ['session', 'plain'] : ['plain', 'session']) {
        const start = process.hrtime.bigint();
        for (let i = 0; i < N; i++) {
          const id = (i % ROWS) + 1;
          if (which === 'plain') {
            const c = await pool.connect();
            await c.query('BEGIN');
            await c.query('UPDATE t_statement SET b = b + 1 WHERE id = $1', [id]);
            await c.query('COMMIT');
            c.release();
          } else {
            await withAuditSession(pool, { actor: 'user:42', cid: `req-${i}`, remoteAddr: '10.0.0.1' },
              (c) => c.query('UPDATE t_statement SET b = b + 1 WHERE id = $1', [id]));
          }
        }
        const us = Number(process.hrtime.bigint() - start) / 1e3 / N;
        (which === 'plain' ? plain : session).push(us);
      }
    }
    await pool.end();

    // ---- report -----------------------------------------------------------------------
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const lines = [
      `pg-auditlog bench: PostgreSQL ${version}, ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
        `${ROWS.toLocaleString('en')}-row 8-column table, ${REPS} interleaved repetitions, median (min–max)`,
      '',
      `| workload | ${VARIANTS.map((v) => HEADING[v]).join(' | ')} |`,
      `|---|${VARIANTS.map(() => '---').join('|')}|`,
    ];
    const audited = VARIANTS.filter((v) => v !== 'none');
    const ratioCell = (base: number[], xs: number[], unit = '×') => {
      const ratios = xs.map((x, i) => x / base[i]!);
      return `${fmt(median(ratios))}${unit} (${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))})`;
    };
    for (const w of Object.keys(bulk)) {
      const b = bulk[w]!;
      const base = `${fmt(median(b.none), 0)} ms (${fmt(Math.min(...b.none), 0)}–${fmt(Math.max(...b.none), 0)})`;
      lines.push(`| bulk ${w.toUpperCase()}, one statement (time) | ${[base, ...audited.map((v) => ratioCell(b.none, b[v]))].join(' | ')} |`);
    }
    for (const key of Object.keys(tps)) {
      const [op, clients] = key.split(':');
      const t = tps[key]!;
      const base = `${fmt(median(t.none), 0)} TPS`;
      lines.push(`| single-row ${op!.toUpperCase()} transactions, ${clients} clients (TPS) | ${[base, ...audited.map((v) => ratioCell(t.none, t[v], ''))].join(' | ')} |`);
    }
    for (const key of Object.keys(walPerTx)) {
      const [op, clients] = key.split(':');
      const w = walPerTx[key]!;
      lines.push(`| WAL per single-row ${op!.toUpperCase()} transaction, ${clients} clients (bytes, after a checkpoint) | ${VARIANTS.map((v) => `${fmt(median(w[v]), 0)} B`).join(' | ')} |`);
    }
    if (bytes.statement.length > 0) {
      lines.push(`| log bytes on disk per one-column update (heap + indexes) | ${['—', ...audited.map((v) => `${fmt(median(bytes[v]), 0)} B`)].join(' | ')} |`);
    }
    lines.push('', 'The reference triggers store whole rows and have no index, no context and no diff; pg-auditlog stores the diff with the full log contract (id, txid, context columns, object-history, transaction and time indexes).');
    for (const key of Object.keys(waits)) {
      const [op, clients] = key.split(':');
      lines.push('', `Wait events of the writing backends, single-row ${op!.toUpperCase()}, ${clients} clients ` +
        `(pg_stat_activity sampled every ${SAMPLE_MS} ms; share of samples; CPU = active, no wait event; Client:ClientRead = waiting for pgbench):`, '');
      for (const v of VARIANTS) lines.push(`- ${HEADING[v]}: ${waitSummary(waits[key]![v])}`);
    }
    const overhead = session.map((s, i) => s - plain[i]!);
    if (session.length > 0) lines.push('', `withAuditSession() round trip: ${fmt(median(session), 0)} µs per transaction vs ${fmt(median(plain), 0)} µs for BEGIN/UPDATE/COMMIT ` +
      `on the same pooled connection: +${fmt(median(overhead), 0)} µs (${fmt(Math.min(...overhead), 0)}–${fmt(Math.max(...overhead), 0)}): the context settings, sent with BEGIN in the same round trip.`);
    const pgbenchVersion = pgbench ? execFileSync(pgbench, ['--version'], { encoding: 'utf8' }).trim() : '';
    lines.push(`single-row transactions: ${pgbench ? `${pgbenchVersion}, prepared statements` : 'Node clients (pgbench not found)'}, ${SECONDS} s per run` +
      `${args.context ? '; each sets actor, cid, client address and request data first (--context)' : ''}.`);
    console.log(lines.join('\n'));
  } finally {
    await client.end();
    await db.close();
  }
}

async function runPgbench(pgbench: string, url: string, dir: string, sql: string, clients: number): Promise<number> {
  const file = path.join(dir, 'script.sql');
  writeFileSync(file, `\\set id random(1, ${ROWS})\n${sql};\n`);
  const u = new URL(url);
  // Asynchronous, so the wait-event sampler keeps running in this process meanwhile.
  const { stdout: out } = await execFileAsync(pgbench, [
    '-n', '-M', 'prepared', '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(SECONDS), '-f', file,
    '-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username), u.pathname.slice(1),
  ], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) } });
  const m = /tps = ([\d.]+)/.exec(out);
  if (!m) throw new Error(`could not read pgbench output:\n${out}`);
  return Number(m[1]);
}

const SAMPLE_MS = 10;

/**
 * Samples what the other client backends of the database are doing, every SAMPLE_MS, until
 * stop(): per sample and backend, `wait_event_type:wait_event`, or CPU when it is active and
 * waits for nothing. Counts per label.
 */
async function sampleWaits(url: string): Promise<{ stop(): Promise<Map<string, number>> }> {
  const side = new Client(url);
  await side.connect();
  await side.query({ name: 'sample', text: SAMPLE_SQL });
  const counts = new Map<string, number>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      const { rows } = await side.query<{ w: string; n: number }>({ name: 'sample', text: SAMPLE_SQL });
      for (const r of rows) counts.set(r.w, (counts.get(r.w) ?? 0) + r.n);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, SAMPLE_MS - (Date.now() - started))));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await side.end();
      return counts;
    },
  };
}

const SAMPLE_SQL = `SELECT CASE WHEN wait_event IS NULL THEN 'CPU' ELSE wait_event_type || ':' || wait_event END AS w, count(*)::int AS n
FROM pg_catalog.pg_stat_activity
WHERE datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid() AND backend_type = 'client backend'
GROUP BY 1`;

function waitSummary(counts: Map<string, number>): string {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return 'no samples';
  return [...counts.entries()].sort((a, b) => b[1] - a[1])
    .map(([w, n]) => `${w} ${fmt((100 * n) / total, 1)} %`).filter((s) => !s.endsWith(' 0.0 %')).join(', ');
}

async function runNodeClients(url: string, sql: string, clients: number): Promise<number> {
  const conns = await Promise.all(Array.from({ length: clients }, async () => {
    const c = new Client(url);
    await c.connect();
    return c;
  }));
  let count = 0;
  const deadline = Date.now() + SECONDS * 1000;
  await Promise.all(conns.map(async (c) => {
    while (Date.now() < deadline) {
      const values = sql.includes('$1') ? [1 + Math.floor(Math.random() * ROWS)] : [];
      await c.query({ text: sql, values, name: sql.slice(0, 60) });
      count++;
    }
  }));
  await Promise.all(conns.map((c) => c.end()));
  return count / SECONDS;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
