// Applies the audit schema migrations in sql/ with postgres-migrations, inside the caller's
// transaction and inside the configured schema.
import path from 'node:path';
import type { ClientBase, PoolClient, QueryConfig, QueryResult } from 'pg';
import { loadMigrationFiles, migrate } from 'postgres-migrations';
import { quoteIdent } from '../ident';

/** src/install → sql/ and dist/install → sql/ alike. */
export const MIGRATIONS_DIR = path.join(__dirname, '..', '..', 'sql');

// postgres-migrations runs each migration between START TRANSACTION and COMMIT. Inside our
// install transaction that COMMIT would end it early, so each becomes a savepoint instead:
// a migration stays atomic and the whole install still commits (or rolls back) as one.
const TRANSACTION_AS_SAVEPOINT: Record<string, string> = {
  'START TRANSACTION': 'SAVEPOINT auditlog_migration',
  COMMIT: 'RELEASE SAVEPOINT auditlog_migration',
  ROLLBACK: 'ROLLBACK TO SAVEPOINT auditlog_migration',
};

function savepointClient(client: ClientBase) {
  return {
    query(q: string | QueryConfig): Promise<QueryResult> {
      if (typeof q === 'string' && q in TRANSACTION_AS_SAVEPOINT) return client.query(TRANSACTION_AS_SAVEPOINT[q]!);
      return client.query(q);
    },
  };
}

/** The bookkeeping table postgres-migrations expects, created in our schema up front. */
function migrationsTableSql(schema: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.migrations (
  id integer PRIMARY KEY,
  name varchar(100) UNIQUE NOT NULL,
  hash varchar(40) NOT NULL,
  executed_at timestamp DEFAULT current_timestamp
)`;
}

/**
 * Creates the audit schema if needed and applies pending migrations. Must run inside a
 * transaction. Returns the names of the migrations applied.
 */
export async function applyMigrations(client: ClientBase, schema: string): Promise<string[]> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
  // postgres-migrations looks for a table named "migrations" in any schema and then queries it
  // unqualified. Creating ours first, with only our schema on the search_path, keeps a user's own
  // "migrations" table out of it entirely.
  await client.query(migrationsTableSql(schema));
  const { rows } = await client.query<{ search_path: string }>('SHOW search_path');
  await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}, pg_catalog, pg_temp`);
  try {
    // The library's types ask for a pg client; it only ever calls query(), which we provide.
    const applied = await migrate({ client: savepointClient(client) as unknown as PoolClient }, MIGRATIONS_DIR);
    return applied.filter((m) => m.id > 0).map((m) => m.fileName);
  } finally {
    await client.query('SELECT pg_catalog.set_config($1, $2, true)', ['search_path', rows[0]!.search_path]);
  }
}

/** How many of our migrations the database has not applied yet (all of them when none are). */
export async function pendingMigrationCount(client: ClientBase, schema: string): Promise<number> {
  const files = (await loadMigrationFiles(MIGRATIONS_DIR)).filter((m) => m.id > 0);
  const { rows: exists } = await client.query<{ present: boolean }>(
    'SELECT pg_catalog.to_regclass($1) IS NOT NULL AS present', [`${quoteIdent(schema)}.migrations`]);
  if (!exists[0]?.present) return files.length;
  const { rows } = await client.query<{ id: number }>(`SELECT id FROM ${quoteIdent(schema)}.migrations`);
  const applied = new Set(rows.map((r) => r.id));
  return files.filter((f) => !applied.has(f.id)).length;
}
