// The verbs pg-auditlog writes itself cannot be forged through logEvent() or log_event().
import { AuditLogError } from '../src/errors';
import { flush, logEvent } from '../src/history';
import { createTestDatabase, type TestDatabase } from './helpers';

const SYSTEM_VERBS = ['insert', 'update', 'delete', 'truncate', 'ddl', 'bypass', 'bypass_refused', 'flush'];

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('events_reserved');
  await db.sql('CREATE TABLE t (id int PRIMARY KEY)');
  await db.install({ tables: { 'public.t': {} } });
});
afterAll(() => db.drop());

test.each(SYSTEM_VERBS)('"%s" is refused by logEvent() with INVALID_ARGUMENT and by log_event() with SQLSTATE 22023', async (verb) => {
  const err = await logEvent(db.pool, { action: verb, table: 't', objectPk: 1 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AuditLogError);
  expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`"${verb}" is reserved: pg-auditlog writes it itself`) });
  const sqlErr = await db.sql(`SELECT auditlog.log_event($1, 'public', 't', '1')`, [verb]).catch((e: unknown) => e);
  expect(sqlErr).toMatchObject({ code: '22023', message: expect.stringContaining(`"${verb}" is reserved`) });
  expect(await db.entries()).toEqual([]);
});

test('other verbs are still accepted, and flush() still records its own flush entry', async () => {
  await logEvent(db.pool, { action: 'export', table: 't', objectPk: 1 });
  await db.sql(`SELECT auditlog.log_event('access')`);
  await flush(db.pool, {});
  expect((await db.entries()).map((e) => [e.action, e.additional_data])).toEqual([['flush', { beforeDate: null, deleted: 2 }]]);
});
