// A throwaway database for a benchmark: on the server at `serverUrl`, or on an embedded
// PostgreSQL started for the run (production durability unless `durable: false`).
import { Client } from 'pg';

export interface BenchDatabase {
  /** Connection string of the new database. */
  url: string;
  serverVersion: string;
  /** Whether an embedded server was started for the run. */
  embedded: boolean;
  /** Drops the database and stops the embedded server, if one was started. */
  close(): Promise<void>;
  /** Leaves the database in place (on a server given by URL) and lets the process exit. */
  keep(): Promise<void>;
}

export async function openBenchDatabase(
  name: string, serverUrl: string | undefined, log: (line: string) => void = () => undefined, durable = true,
): Promise<BenchDatabase> {
  let stopServer: (() => Promise<void>) | undefined;
  if (!serverUrl) {
    const { startEmbeddedPostgres } = await import('./embedded-postgres.mjs');
    log('starting an embedded PostgreSQL…');
    const server = await startEmbeddedPostgres({ durable });
    serverUrl = server.connectionString;
    stopServer = () => server.stop();
  }
  const dbName = `${name}_${process.pid}`;
  const admin = new Client(serverUrl);
  await admin.connect();
  const serverVersion = (await admin.query('SHOW server_version')).rows[0].server_version as string;
  await admin.query(`CREATE DATABASE "${dbName}"`);
  const u = new URL(serverUrl);
  u.pathname = `/${dbName}`;
  return {
    url: u.toString(),
    serverVersion,
    embedded: stopServer !== undefined,
    async close() {
      await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
      await admin.end();
      await stopServer?.();
    },
    async keep() {
      await admin.end();
    },
  };
}
