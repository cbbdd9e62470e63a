// Express + Kysely: one wrapped pool, one middleware line.
import express from 'express';
import { Pool } from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { auditPool, auditContextMiddleware } from 'pg-auditlog';
import { check, setUp, url } from './setup';

async function main() {
  await setUp();
  const pool = auditPool(new Pool({ connectionString: url }));
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });

  const app = express();
  app.use((req, _res, next) => { (req as any).user = { id: req.header('x-user') }; next(); }); // your auth
  app.use(auditContextMiddleware({ actor: (req: any) => req.user?.id }));
  app.put('/users/:id', async (req, res) => {
    await db.insertInto('example_users').values({ id: Number(req.params.id), email: 'a@example.com' }).execute();
    await db.transaction().execute((trx) =>
      trx.updateTable('example_users').set({ email: 'b@example.com' }).where('id', '=', Number(req.params.id)).execute());
    res.sendStatus(204);
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as { port: number };
  const res = await fetch(`http://127.0.0.1:${port}/users/1`, { method: 'PUT', headers: { 'x-user': 'alice' } });
  console.log('status', res.status, 'correlation id', res.headers.get('x-correlation-id'));
  server.close();
  await db.destroy();
  await check('alice');
}
main().catch((err) => { console.error(err); process.exit(1); });
