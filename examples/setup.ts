// Shared by the examples: a table to audit, capture installed, and a check of what was logged.
import { Client } from 'pg';
import { install } from 'pg-auditlog';

export const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export async function setUp(): Promise<void> {
  const c = new Client(url);
  await c.connect();
  try {
    await c.query('CREATE TABLE IF NOT EXISTS example_users (id int PRIMARY KEY, email text)');
    await install(c, { tables: { 'public.example_users': {} } });
    await c.query('TRUNCATE example_users');
    await c.query(`DELETE FROM auditlog.log_entry WHERE table_name = 'example_users'`);
  } finally {
    await c.end();
  }
}

/** Prints the example's entries and fails unless every one has the expected actor. */
export async function check(actor: string): Promise<void> {
  const c = new Client(url);
  await c.connect();
  try {
    const { rows } = await c.query(
      `SELECT action, actor, cid, additional_data FROM auditlog.log_entry
       WHERE table_name = 'example_users' AND actor IS NOT DISTINCT FROM $1 ORDER BY id`, [actor]);
    const { rows: [{ n }] } = await c.query(`SELECT count(*)::int AS n FROM auditlog.log_entry WHERE table_name = 'example_users'`);
    for (const r of rows) console.log(JSON.stringify(r));
    if (rows.length === 0 || rows.length !== n) throw new Error(`expected every entry by ${actor}, got ${rows.length} of ${n}`);
    await c.query(`DELETE FROM auditlog.log_entry WHERE table_name = 'example_users'`);
    console.log(`ok: ${rows.length} entries attributed to ${actor}`);
  } finally {
    await c.end();
  }
}
