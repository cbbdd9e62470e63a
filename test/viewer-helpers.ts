// The viewer's test data: one audited table with a mask, a mapping and a representation,
// entries from several actors, correlation ids and transactions.
import type { Pool } from 'pg';
import { withAuditSession } from '../src';
import type { TestDatabase } from './helpers';

export const BIG = '99999999999999999999.9999999999';

export async function seedViewerData(db: TestDatabase, pool: Pool = db.pool): Promise<void> {
  await db.sql(`
    CREATE TABLE users (id serial PRIMARY KEY, email text, ssn text, balance numeric);
    CREATE TABLE order_items (order_id int, line int, qty int, PRIMARY KEY (order_id, line));`);
  await db.install({
    tables: {
      'public.users': { mask: ['ssn'], mapping: { email: 'E-mail address' }, objectRepr: 'email' },
      'public.order_items': {},
    },
  });
  await withAuditSession(pool, { actor: 'alice', cid: 'req-1', remoteAddr: '10.0.0.1', data: { reason: 'signup' } }, async (c) => {
    await c.query(`INSERT INTO users (email, ssn, balance) VALUES ('ann@example.com', '111', ${BIG}), ('bob@example.com', '222', 1)`);
  });
  await withAuditSession(pool, { actor: 'bob', cid: 'req-2' }, async (c) => {
    await c.query(`UPDATE users SET email = 'ann@example.org', ssn = '333', balance = 1.0 WHERE id = 1`);
    await c.query('INSERT INTO order_items VALUES (7, 2, 1)');
  });
  await withAuditSession(pool, { actor: 'alice', cid: 'req-3' }, async (c) => {
    await c.query('UPDATE order_items SET qty = 5 WHERE order_id = 7 AND line = 2');
    await c.query('DELETE FROM users WHERE id = 2');
  });
}
