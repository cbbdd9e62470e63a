// Gives every test worker TEST_DATABASE_URL: the one given, or a fresh embedded PostgreSQL.
import pg from 'pg';
import { startEmbeddedPostgres } from '../../scripts/lib/embedded-postgres.mjs';

export default async function globalSetup() {
  if (!process.env.TEST_DATABASE_URL) {
    const server = await startEmbeddedPostgres();
    globalThis.__embeddedPostgres = server;
    process.env.TEST_DATABASE_URL = server.connectionString;
  }
  const client = new pg.Client(process.env.TEST_DATABASE_URL);
  await client.connect();
  const { rows } = await client.query('SHOW server_version');
  await client.end();
  process.stdout.write(`\ntests run against PostgreSQL ${rows[0].server_version}` +
    `${globalThis.__embeddedPostgres ? ' (embedded)' : ` at ${redact(process.env.TEST_DATABASE_URL)}`}\n`);
}

function redact(url) {
  return url.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:***@');
}
