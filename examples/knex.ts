// Knex: give it the wrapped pool as its connectionPool (knex >= 3.2).
import knex from 'knex';
import { Pool } from 'pg';
import { auditPool, runWithAuditContext } from 'pg-auditlog';
import { check, setUp, url } from './setup';

async function main() {
  await setUp();
  const pool = auditPool(new Pool({ connectionString: url }));
  const db = knex({ client: 'pg', connectionPool: pool } as any);
  await runWithAuditContext({ actor: 'knex-user' }, async () => {
    await db('example_users').insert({ id: 1, email: 'a@example.com' });
    await db.transaction(async (trx) => {
      await trx('example_users').where({ id: 1 }).update({ email: 'b@example.com' });
    });
  });
  await db.destroy();
  await pool.end();
  await check('knex-user');
}
main().catch((err) => { console.error(err); process.exit(1); });
