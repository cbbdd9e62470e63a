// Every request reads in its own READ ONLY transaction on one pooled client: a consistent
// snapshot across the queries of a page, and nothing the viewer runs can change anything.
import type { ClientBase, Pool, PoolClient, QueryConfig } from 'pg';
import { exactTypes } from './json';

export interface ReadOptions {
  /** Sets auditlog.tenant for this transaction (tenant isolation reads only that tenant). */
  tenant?: string;
  /** statement_timeout of each query, in ms. */
  statementTimeoutMs: number;
}

/**
 * A view of `client` whose query() reads json/jsonb losslessly (per query: the pool's other
 * users keep their own type parsers). Everything else passes straight through.
 */
function exactClient(client: PoolClient): ClientBase {
  const query = (text: string | QueryConfig, values?: unknown[]) => {
    const config: QueryConfig = typeof text === 'string' ? { text, values } : { ...text, values: values ?? text.values };
    return client.query({ ...config, types: exactTypes });
  };
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'query') return query;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as ClientBase;
}

export async function readOnly<T>(pool: Pool, options: ReadOptions, fn: (db: ClientBase) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // REPEATABLE READ: the list, the display names and the next-page cursor come from one snapshot.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY').catch((err: Error) => { broken = err; throw err; });
    try {
      await client.query(
        `SELECT pg_catalog.set_config('statement_timeout', $1, true),
                CASE WHEN $2::text IS NOT NULL THEN pg_catalog.set_config('auditlog.tenant', $2, true) END`,
        [String(options.statementTimeoutMs), options.tenant ?? null],
      );
      const result = await fn(exactClient(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      // A client that cannot even roll back must not go back to the pool.
      await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
      throw err;
    }
  } finally {
    client.release(broken);
  }
}
