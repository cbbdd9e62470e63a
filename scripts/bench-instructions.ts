// `npm run bench:instructions`: CPU instructions per single-row statement, unaudited
// and audited in row and statement mode, counted by valgrind's callgrind in a single-user
// PostgreSQL. Unlike TPS, the count does not depend on what else the machine runs (repeatable
// to about 1 %), so it shows what a change to the generated capture costs or saves.
//
//   npm run bench:instructions -- [--bin DIR] [--statements 1000] [--ops update,insert] [--context both|off|on]
//
// Needs valgrind (apt-get install valgrind) and PostgreSQL server binaries (--bin, default the
// newest /usr/lib/postgresql/*/bin). A throwaway cluster is created in a temporary folder, with
// the bench's 8-column table (100,000 rows) once per variant, and pg-auditlog installed from
// this checkout. Each case runs the same prepared statement 200 times (warm-up), then N more
// times; its cost per statement is the difference between the two runs' counts divided by N,
// so start-up and warm-up cancel out. The notification window is left out (auditlog.notify_sent
// is set for the session): under valgrind every statement would open a window of its own,
// where at real speed one transaction in 100 to 200 sends it. `--context on` sets actor, cid,
// client address and request data in every transaction, as withAuditSession() does.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { install } from '../src';

const { values: args } = parseArgs({
  options: {
    bin: { type: 'string' },
    statements: { type: 'string', default: '1000' },
    ops: { type: 'string', default: 'update,insert' },
    context: { type: 'string', default: 'both' },
  },
});

const VARIANTS = ['none', 'row', 'statement'] as const;
type Variant = typeof VARIANTS[number];
const HEADING: Record<Variant, string> = { none: 'no audit', row: 'row mode', statement: 'statement mode' };
const ROWS = 100_000;
const WARM_UP = 200;
const N = Number(args.statements);
if (!Number.isInteger(N) || N < 1) throw new Error(`--statements must be a positive whole number, not "${args.statements}"`);
if (!['both', 'on', 'off'].includes(args.context)) throw new Error(`--context must be both, on or off, not "${args.context}"`);
const unknownOps = args.ops.split(',').map((o) => o.trim()).filter((o) => o !== 'update' && o !== 'insert');
if (unknownOps.length > 0) throw new Error(`--ops takes update and insert, not ${unknownOps.join(', ')}`);

function newestServerBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'postgres'))) : [];
  if (versions.length === 0) throw new Error('no PostgreSQL server binaries found: pass --bin DIR (the folder holding postgres and initdb)');
  return path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0]!, 'bin');
}

const bin = args.bin ?? newestServerBin();
if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('valgrind is not installed: apt-get install valgrind');
// The server refuses to run as root: then everything runs as the "postgres" user.
const asRoot = process.getuid?.() === 0;
function run(cmd: string, argv: string[], input?: string): string {
  const [file, list] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...argv]] : [cmd, argv];
  return execFileSync(file, list, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}

const work = mkdtempSync(path.join(os.tmpdir(), 'auditlog-instructions-'));
if (asRoot) execFileSync('chown', ['postgres', work]);
chmodSync(work, 0o755);
const data = path.join(work, 'data');
const log = (line: string) => process.stderr.write(`${line}\n`);

async function prepareCluster(): Promise<string> {
  run(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const port = String(20000 + (process.pid % 20000));
  run(path.join(bin, 'pg_ctl'), ['-D', data, '-o', `-p ${port} -k ${work} -c listen_addresses=''`, '-l', path.join(work, 'server.log'), '-w', 'start']);
  const client = new Client({ host: work, port: Number(port), user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    const version = (await client.query('SHOW server_version')).rows[0].server_version as string;
    for (const v of VARIANTS) {
      await client.query(`CREATE TABLE t_${v} (id int PRIMARY KEY, a int, b int, c text, d text, e numeric(12, 2), f timestamptz, g boolean)`);
      await client.query(`INSERT INTO t_${v} SELECT i, i, i, 'c' || i, 'd' || i, i / 7.0, now(), true FROM generate_series(1, ${ROWS}) AS i`);
    }
    await install(client, { tables: { 'public.t_row': { mode: 'row' }, 'public.t_statement': { mode: 'statement' } } });
    // A log that already holds entries, as in production, and settled statistics.
    for (const v of VARIANTS) await client.query(`UPDATE t_${v} SET a = a + 1 WHERE id <= 1000`);
    await client.query('VACUUM ANALYZE');
    await client.query('CHECKPOINT');
    return version;
  } finally {
    await client.end();
    run(path.join(bin, 'pg_ctl'), ['-D', data, '-w', 'stop']);
  }
}

/** The statements one case sends, one per line (single-user mode runs each line as a query). */
function script(variant: Variant, op: string, context: boolean, count: number): string {
  const lines = [`SET auditlog.notify_sent = 'on'`];
  lines.push(op === 'update'
    ? `PREPARE w(int) AS UPDATE t_${variant} SET a = a + 1 WHERE id = $1`
    : `PREPARE w(int) AS INSERT INTO t_${variant} (id, a, b, c, d, e, f, g) VALUES ($1, 1, 2, 'c', 'd', 1.5, now(), true)`);
  for (let i = 0; i < WARM_UP + count; i++) {
    const key = op === 'update' ? 1 + ((i * 7919) % ROWS) : ROWS + 1 + i;
    lines.push(context
      ? `BEGIN; SELECT set_config('auditlog.actor', 'user-${i}', true), set_config('auditlog.cid', 'req-${i}', true), ` +
        `set_config('auditlog.remote_addr', '203.0.113.9', true), set_config('auditlog.data', '{"method": "GET", "route": "/x"}', true); ` +
        `EXECUTE w(${key}); COMMIT`
      : `EXECUTE w(${key})`);
  }
  return `${lines.join('\n')}\n`;
}

/** Instructions of one single-user run of `sql`, on a copy of the prepared cluster. */
function instructions(name: string, sql: string): number {
  const copy = path.join(work, `run-${name}`);
  const out = path.join(work, `${name}.callgrind`);
  cpSync(data, copy, { recursive: true });
  if (asRoot) execFileSync('chown', ['-R', 'postgres', copy]);
  try {
    const output = run('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, path.join(bin, 'postgres'), '--single', '-D', copy,
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', 'postgres'], sql);
    const failed = output.split('\n').find((l) => /\bERROR:/.test(l));
    if (failed) throw new Error(`${name}: ${failed.trim()}`);
    const summary = /^summary: (\d+)$/m.exec(readFileSync(out, 'utf8'));
    if (!summary) throw new Error(`${name}: no summary in ${out}`);
    return Number(summary[1]);
  } finally {
    rmSync(copy, { recursive: true, force: true });
    rmSync(out, { force: true });
  }
}

async function main(): Promise<void> {
  log(`preparing a cluster with ${bin}…`);
  const version = await prepareCluster();
  const contexts = args.context === 'both' ? [false, true] : [args.context === 'on'];
  const ops = args.ops.split(',').map((o) => o.trim());
  const rows: string[][] = [];
  for (const op of ops) {
    for (const context of contexts) {
      const per: Record<Variant, number> = { none: 0, row: 0, statement: 0 };
      for (const v of VARIANTS) {
        const label = `${op}-${context ? 'context' : 'plain'}-${v}`;
        log(`counting ${label}…`);
        const base = instructions(`${label}-0`, script(v, op, context, 0));
        per[v] = (instructions(`${label}-n`, script(v, op, context, N)) - base) / N;
      }
      const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
      rows.push([`single-row ${op.toUpperCase()}${context ? ', context set' : ''}`, fmt(per.none),
        ...(['row', 'statement'] as const).map((v) => `${fmt(per[v])} (+${fmt(per[v] - per.none)})`)]);
    }
  }
  console.log(`\npg-auditlog instructions per statement: PostgreSQL ${version}, ${ROWS.toLocaleString('en-US')}-row 8-column table, ` +
    `${N} statements after ${WARM_UP} of warm-up, callgrind\n`);
  console.log(`| statement (one transaction each) | ${VARIANTS.map((v) => HEADING[v]).join(' | ')} |`);
  console.log(`|---|${VARIANTS.map(() => '---:').join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

main()
  .catch((err) => { console.error(err); process.exitCode = 1; })
  .finally(() => {
    if (existsSync(path.join(data, 'postmaster.pid'))) {
      try { run(path.join(bin, 'pg_ctl'), ['-D', data, '-w', 'stop']); } catch { /* already stopped */ }
    }
    rmSync(work, { recursive: true, force: true });
  });
