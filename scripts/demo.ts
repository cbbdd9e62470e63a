// `npm run demo`: starts an embedded PostgreSQL, installs pg-auditlog on a small table, writes
// under an audit session and directly, prints the entries, and stops. Needs no server.
import { Client, Pool } from 'pg';
import { install, withAuditSession } from '../src';

async function main(): Promise<void> {
  const { startEmbeddedPostgres } = await import('./lib/embedded-postgres.mjs');
  console.log('starting an embedded PostgreSQL…');
  const server = await startEmbeddedPostgres();
  const pool = new Pool({ connectionString: server.connectionString, max: 4 });
  // pool.end() resolves before its sockets close; the server stopping right after must not
  // surface as an unhandled 'error' from an idle connection.
  pool.on('error', () => undefined);
  try {
    await pool.query(`CREATE TABLE users (
      id serial PRIMARY KEY, email text NOT NULL, ssn text, last_login timestamptz, updated_at timestamptz)`);

    const client = new Client(server.connectionString);
    await client.connect();
    const result = await install(client, {
      excludeFields: ['updated_at'],
      tables: { 'public.users': { exclude: ['last_login'], mask: ['ssn'], objectRepr: 'email' } },
    }, { log: (line) => console.log(`  install: ${line}`) });
    await client.end();
    console.log(`installed: ${result.installed.join(', ')}\n`);

    await withAuditSession(pool, { actor: 'user:42', cid: 'req-1', remoteAddr: '203.0.113.7', data: { reason: 'sign-up' } },
      (c) => c.query(`INSERT INTO users (email, ssn) VALUES ('ada@example.com', '123-45-6789')`));
    await withAuditSession(pool, { actor: 'user:42', cid: 'req-2', data: { reason: 'support ticket 7' } },
      (c) => c.query(`UPDATE users SET email = 'ada@lovelace.dev', ssn = '987-65-4321', updated_at = now() WHERE id = 1`));
    await pool.query('UPDATE users SET last_login = now()'); // excluded column only: no entry
    await pool.query(`DELETE FROM users WHERE id = 1`); // no session: still recorded, with db_user

    const { rows } = await pool.query(
      `SELECT id, action, object_pk, object_repr, changes, actor, cid, remote_addr, db_user, additional_data
       FROM auditlog.log_entry ORDER BY id`);
    console.log('auditlog.log_entry:');
    for (const r of rows) {
      console.log(`#${r.id} ${r.action.padEnd(6)} users/${r.object_pk} (${r.object_repr}) by ${r.actor ?? '-'} ` +
        `[cid ${r.cid ?? '-'}, ip ${r.remote_addr ?? '-'}, db_user ${r.db_user}]`);
      console.log(`    changes: ${JSON.stringify(r.changes)}`);
      if (r.additional_data) console.log(`    data:    ${JSON.stringify(r.additional_data)}`);
    }
    console.log('\nthe update that touched only last_login wrote no entry; the ssn is never stored in clear.');
  } finally {
    await pool.end();
    await server.stop();
    console.log('embedded PostgreSQL stopped.');
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
