// A request's audit context carried into a pg-boss job and restored in the worker.
import { Pool } from 'pg';
import PgBoss from 'pg-boss';
import { auditPool } from '../src/integrations';
import { runWithAuditContext, serializeAuditContext } from '../src/session';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('int_jobs');
  await db.sql('CREATE TABLE invoices (id int PRIMARY KEY, total int)');
  await db.install({ tables: { 'public.invoices': {} } });
});
afterAll(() => db.drop());

it('pg-boss: the job runs with the context of the request that queued it', async () => {
  const pool = auditPool(new Pool({ connectionString: db.url, max: 2 }));
  const boss = new PgBoss({ connectionString: db.url, max: 2 });
  boss.on('error', () => undefined);
  await boss.start();
  try {
    await boss.createQueue('invoice');
    const done = new Promise<void>((resolve, reject) => {
      void boss.work<{ id: number; auditContext?: any }>('invoice', { pollingIntervalSeconds: 0.5 }, async ([job]) => {
        try {
          await runWithAuditContext(job!.data.auditContext, () =>
            pool.query('INSERT INTO invoices VALUES ($1, 100)', [job!.data.id]));
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    });
    // In the request handler:
    await runWithAuditContext({ actor: 'alice', cid: 'req-9' }, () =>
      boss.send('invoice', { id: 1, auditContext: serializeAuditContext() }));
    await done;
  } finally {
    await boss.stop({ graceful: false, wait: true });
    await pool.end();
  }
  const [entry] = await db.entries();
  expect(entry).toMatchObject({ actor: 'alice', cid: 'req-9', table_name: 'invoices' });
});
