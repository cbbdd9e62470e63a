// What the security features cost writers, measured in one run against one server:
//   - tamperEvidence on vs off (the only write-path difference is the (txid, id) index);
//   - sealing: seal() time after each workload, per entry and relative to the write time;
//   - the bypass check at the top of every capture function vs a capture function without it.
// Each repetition runs every variant once, in rotating order; the report gives medians.
//
//   npx tsx scripts/bench-security.ts                 # embedded PostgreSQL 18
//   DATABASE_URL=postgres://… npx tsx scripts/bench-security.ts
//   REPS=9 TXNS=200 ROWS=20 WRITERS=4 npx tsx scripts/bench-security.ts
import { Client } from 'pg';
import { install } from '../src/install';
import { seal } from '../src/security/verify';
import { startEmbeddedPostgres } from './lib/embedded-postgres.mjs';

const REPS = Number(process.env.REPS ?? 9);
const TXNS = Number(process.env.TXNS ?? 200);
const ROWS = Number(process.env.ROWS ?? 20);
const WRITERS = Number(process.env.WRITERS ?? 4);

type Variant = 'plain' | 'tamper' | 'noBypassCheck';
const VARIANTS: Variant[] = ['plain', 'tamper', 'noBypassCheck'];
const table = { tables: { 'public.orders': {} } };

function urlFor(base: string, database: string): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client(url);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function setup(base: string, variant: Variant): Promise<string> {
  const name = `auditlog_bench_${variant.toLowerCase()}_${process.pid}`;
  await withClient(base, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name}`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  const url = urlFor(base, name);
  await withClient(url, async (c) => {
    await c.query('CREATE TABLE orders (id bigserial PRIMARY KEY, customer text, qty int, note text)');
    await install(c, { ...table, tamperEvidence: variant === 'tamper' });
    if (variant === 'noBypassCheck') {
      // The same capture function without its first line, to price that line alone.
      const { rows } = await c.query<{ oid: string; def: string }>(
        `SELECT p.oid, pg_get_functiondef(p.oid) AS def FROM pg_proc p
         WHERE p.pronamespace = 'auditlog'::regnamespace AND p.prorettype = 'trigger'::regtype`);
      for (const r of rows) {
        const stripped = r.def.replace(/^\s*IF "auditlog"\.capture_disabled\(.*\n/m, '');
        if (stripped === r.def) throw new Error('bypass check line not found in the capture function');
        await c.query(stripped);
      }
    }
  });
  return url;
}

/** WRITERS connections, each running TXNS/WRITERS transactions of ROWS inserts + ROWS updates. */
async function workload(url: string): Promise<number> {
  const clients = await Promise.all(Array.from({ length: WRITERS }, async () => {
    const c = new Client(url);
    await c.connect();
    return c;
  }));
  const start = process.hrtime.bigint();
  await Promise.all(clients.map(async (c) => {
    for (let t = 0; t < TXNS / WRITERS; t++) {
      await c.query('BEGIN');
      const { rows } = await c.query<{ id: string }>(
        `INSERT INTO orders (customer, qty, note) SELECT 'c' || i, i, repeat('n', 40) FROM generate_series(1, $1::int) i RETURNING id`, [ROWS]);
      await c.query('UPDATE orders SET qty = qty + 1 WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
      await c.query('COMMIT');
    }
  }));
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  await Promise.all(clients.map((c) => c.end()));
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main() {
  let server: { connectionString: string; stop(): Promise<void> } | undefined;
  let base = process.env.DATABASE_URL;
  if (!base) {
    server = await startEmbeddedPostgres();
    base = server!.connectionString;
  }
  try {
    const version = await withClient(base!, async (c) =>
      (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version);
    const urls = Object.fromEntries(await Promise.all(VARIANTS.map(async (v) => [v, await setup(base!, v)] as const))) as Record<Variant, string>;
    const times: Record<Variant, number[]> = { plain: [], tamper: [], noBypassCheck: [] };
    const sealMs: number[] = [];
    const sealed: number[] = [];
    await workload(urls.plain); // warm-up, not counted
    for (let rep = 0; rep < REPS; rep++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + rep) % VARIANTS.length]!);
      for (const v of order) times[v].push(await workload(urls[v]));
      await withClient(urls.tamper, async (c) => {
        const start = process.hrtime.bigint();
        sealed.push(await seal(c, { ...table, tamperEvidence: true }));
        sealMs.push(Number(process.hrtime.bigint() - start) / 1e6);
      });
    }
    const verifyMs = await withClient(urls.tamper, async (c) => {
      const start = process.hrtime.bigint();
      const { rows } = await c.query('SELECT count(*) AS problems FROM auditlog.verify_seals()');
      if (rows[0].problems !== '0') throw new Error('verify found problems in an untouched log');
      return Number(process.hrtime.bigint() - start) / 1e6;
    });
    const [{ entries }] = (await withClient(urls.tamper, (c) => c.query('SELECT count(*)::int AS entries FROM auditlog.entry_seal'))).rows;
    const entriesPerRep = TXNS * ROWS * 2;
    const m = Object.fromEntries(VARIANTS.map((v) => [v, median(times[v])])) as Record<Variant, number>;
    const ratios = (a: Variant, b: Variant) => median(times[a].map((t, i) => t / times[b][i]!));
    const out = [
      `PostgreSQL ${version}; ${REPS} interleaved repetitions of ${TXNS} transactions x (${ROWS} inserts + ${ROWS} updates) over ${WRITERS} connections = ${entriesPerRep} entries each`,
      `write time, median ms: without tamperEvidence ${m.plain.toFixed(0)}, with ${m.tamper.toFixed(0)}, without the bypass check ${m.noBypassCheck.toFixed(0)}`,
      `tamperEvidence write-path ratio (with / without, median of per-repetition ratios): ${ratios('tamper', 'plain').toFixed(3)}`,
      `seal(): median ${median(sealMs).toFixed(0)} ms for ${median(sealed)} entries = ${(1000 * median(sealMs) / Math.max(1, median(sealed))).toFixed(1)} µs/entry; ` +
        `(write + seal) / write without = ${((m.tamper + median(sealMs)) / m.plain).toFixed(3)}`,
      `verify_seals() over the whole chain: ${verifyMs.toFixed(0)} ms for ${entries} entries = ${(1000 * verifyMs / entries).toFixed(1)} µs/entry`,
      `bypass check ratio (with / without the capture_disabled() line): ${ratios('plain', 'noBypassCheck').toFixed(3)}`,
    ];
    console.log(out.join('\n'));
    await withClient(base!, async (c) => {
      for (const v of VARIANTS) await c.query(`DROP DATABASE IF EXISTS ${new URL(urls[v]).pathname.slice(1)} WITH (FORCE)`);
    });
  } finally {
    await server?.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
