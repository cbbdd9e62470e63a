// Small helpers shared by the installer, the session wrapper and the history functions.
import { createHash } from 'node:crypto';
import { types, type ClientBase, type CustomTypesConfig, type Pool, type QueryConfig } from 'pg';
import { parseExactJson } from './json';

/** A pool or a connected client: anything with query(). */
export type Db = Pool | ClientBase;

export function isPool(db: Db): db is Pool {
  // A Pool has totalCount; a Client or PoolClient has not.
  return typeof (db as Pool).totalCount === 'number';
}

/**
 * BEGIN, fn, COMMIT; ROLLBACK and rethrow if fn throws. `onBroken` hears of a connection that
 * could not even roll back: it must not go back to a pool. `begin` may carry more statements to
 * run in the same round trip (a simple-query string, no parameters).
 */
export async function inTransaction<T>(
  client: ClientBase, fn: () => Promise<T>, onBroken?: (err: Error) => void, begin = 'BEGIN',
): Promise<T> {
  try {
    await client.query(begin);
  } catch (err) {
    onBroken?.(err as Error);
    throw err;
  }
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => onBroken?.(rollbackErr));
    throw err;
  }
}

const JSON_OID = 114;
const JSONB_OID = 3802;

/**
 * Per-query type parsers (QueryConfig `types`) that read json and jsonb losslessly
 * (parseExactJson: numbers a JavaScript number cannot hold exactly become ExactNumbers) and
 * every other type as the application's pg.types say. pg's global parsers are never changed:
 * the application shares them.
 */
export const exactJsonTypes: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    (oid === JSON_OID || oid === JSONB_OID) && format !== 'binary'
      ? parseExactJson
      : types.getTypeParser(oid, format)) as CustomTypesConfig['getTypeParser'],
};

/**
 * A read query as a named prepared statement (name: a hash of its text), so each connection
 * plans it once: after five runs PostgreSQL keeps a generic plan. On a partitioned log that
 * saves the planning of every partition's indexes on every call (4 ms of a 5 ms lookup over 28
 * partitions). AUDITLOG_PREPARED_STATEMENTS=off sends them unnamed, for a connection pooler
 * that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
 */
export function prepared(text: string, values: unknown[], parsers?: CustomTypesConfig): QueryConfig {
  const config = unnamed(text, values, parsers);
  if (/^(off|false|0|no)$/i.test(process.env.AUDITLOG_PREPARED_STATEMENTS ?? '')) return config;
  return { ...config, name: `auditlog_${createHash('sha1').update(text).digest('hex').slice(0, 24)}` };
}

/** The same read sent unnamed: planned for its values on every call. */
export function unnamed(text: string, values: unknown[], parsers?: CustomTypesConfig): QueryConfig {
  return { text, values, ...(parsers ? { types: parsers } : {}) };
}
