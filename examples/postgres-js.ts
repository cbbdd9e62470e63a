// postgres.js is another driver: set the context yourself at the start of sql.begin().
import postgres from 'postgres';
import { auditSettings, runWithAuditContext } from 'pg-auditlog';
import { check, setUp, url } from './setup';

async function main() {
  await setUp();
  const sql = postgres(url, { onnotice: () => undefined });
  /** sql.begin() with the ambient audit context set transaction-locally, in the same round trip. */
  const audited = <T>(fn: (tx: postgres.TransactionSql) => Promise<T>) => sql.begin(async (tx) => {
    const s = auditSettings();
    if (s) await tx`SELECT pg_catalog.set_config(name, value, true) FROM unnest(${s.names}::text[], ${s.values}::text[]) AS s(name, value)`;
    return fn(tx);
  });
  await runWithAuditContext({ actor: 'pgjs-user' }, () => audited(async (tx) => {
    await tx`INSERT INTO example_users VALUES (1, 'a@example.com')`;
    await tx`UPDATE example_users SET email = 'b@example.com' WHERE id = 1`;
  }));
  await sql.end();
  await check('pgjs-user');
}
main().catch((err) => { console.error(err); process.exit(1); });
