// `npm run bench:install`: how long `install` takes for many tables (one transaction).
//
//   npm run bench:install [-- --tables 500] [--database-url URL]
//
// Creates N 8-column tables in a fresh database, then times a first install (all tables
// missing), a rerun (a no-op), and a reinstall after a config change that touches every
// table. Prints one line per step.
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { install } from '../src';
import type { AuditConfig } from '../src/interfaces';
import { openBenchDatabase } from './lib/bench-database';

const { values: args } = parseArgs({
  options: { tables: { type: 'string', default: '500' }, 'database-url': { type: 'string' } },
});
const TABLES = Number(args.tables);

async function main(): Promise<void> {
  const db = await openBenchDatabase('auditlog_bench_install', args['database-url'] ?? process.env.DATABASE_URL);
  const client = new Client(db.url);
  await client.connect();
  try {
    const tables: Record<string, object> = {};
    const changed: Record<string, object> = {};
    for (let i = 1; i <= TABLES; i++) {
      await client.query(`CREATE TABLE t${i} (id int PRIMARY KEY, a int, b int, c text, d text, e numeric, f timestamptz, g boolean)`);
      tables[`public.t${i}`] = {};
      changed[`public.t${i}`] = { exclude: ['g'] };
    }
    const time = async (label: string, config: AuditConfig) => {
      const start = process.hrtime.bigint();
      const r = await install(client, config);
      const s = Number(process.hrtime.bigint() - start) / 1e9;
      console.log(`${label}: ${s.toFixed(2)} s (${r.installed.length} installed or updated, ${r.unchanged.length} unchanged)`);
    };
    await time(`first install of ${TABLES} tables, one transaction`, { tables });
    await time('rerun (no-op)', { tables });
    await time(`reinstall after a config change on all ${TABLES}`, { tables: changed });
  } finally {
    await client.end();
    await db.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
