// Fastify + Drizzle: register the plugin, hand drizzle the wrapped pool.
import Fastify from 'fastify';
import { Pool } from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import { auditPool, fastifyAuditContext } from 'pg-auditlog';
import { check, setUp, url } from './setup';

async function main() {
  await setUp();
  const pool = auditPool(new Pool({ connectionString: url }));
  const db = drizzle(pool);
  const app = Fastify();
  await app.register(fastifyAuditContext, { actor: (req) => req.headers['x-user'] as string | undefined });
  app.post('/users', async () => {
    await db.transaction(async (tx) => {
      await tx.execute(sql`INSERT INTO example_users VALUES (1, 'a@example.com')`);
      await tx.execute(sql`UPDATE example_users SET email = 'b@example.com' WHERE id = 1`);
    });
    await db.execute(sql`DELETE FROM example_users WHERE id = 1`);
    return { ok: true };
  });
  const res = await app.inject({ method: 'POST', url: '/users', headers: { 'x-user': 'fay' } });
  console.log('status', res.statusCode, 'correlation id', res.headers['x-correlation-id']);
  await app.close();
  await pool.end();
  await check('fay');
}
main().catch((err) => { console.error(err); process.exit(1); });
