// Small helpers shared by the installer, the session wrapper and the history functions.
import type { ClientBase, Pool } from 'pg';

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
