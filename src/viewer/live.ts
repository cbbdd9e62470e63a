// Live updates: one in-memory subscribe() (no durable cursor, nothing stored in the database)
// shared by every open stream, started with the first and closed shortly after the last.
// A delivered batch only wakes the streams: each reads what is new through the same
// history query, filters, READ ONLY transaction and tenant as the page it belongs to.
import { subscribe } from '../events';
import type { Subscription } from '../interfaces';

export interface LiveHub {
  /** Calls wake() after entries were committed; returns the function that leaves. */
  join(wake: () => void): () => void;
  close(): Promise<void>;
}

export interface LiveOptions {
  connectionString: string | undefined;
  schema: string;
  pollIntervalMs: number;
  log: (line: string) => void;
}

/** How long the subscription stays open after the last stream left (a page reload). */
const IDLE_CLOSE_MS = 10_000;

export function liveHub(options: LiveOptions): LiveHub {
  const waiters = new Set<() => void>();
  let subscription: Promise<Subscription | null> | null = null;
  let idleTimer: NodeJS.Timeout | null = null;
  let closed = false;

  const start = () => {
    if (options.connectionString === undefined || subscription !== null || closed) return;
    subscription = subscribe(
      { connectionString: options.connectionString, schema: options.schema, pollIntervalMs: options.pollIntervalMs, log: options.log },
      () => { for (const wake of waiters) wake(); },
    ).then(
      (s) => {
        s.on('error', (err) => options.log(`live updates: ${err.message}`));
        // The subscription starts at "now": let every stream look once for what came before.
        for (const wake of waiters) wake();
        return s;
      },
      (err: Error) => {
        // Streams still poll on their own; say once why they are slower.
        options.log(`live updates fall back to polling: ${err.message}`);
        return null;
      },
    );
  };
  const stop = async () => {
    const s = subscription;
    subscription = null;
    await (await s)?.close();
  };

  return {
    join(wake) {
      waiters.add(wake);
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = null;
      start();
      return () => {
        waiters.delete(wake);
        if (waiters.size === 0 && !closed) {
          idleTimer = setTimeout(() => { idleTimer = null; if (waiters.size === 0) void stop(); }, IDLE_CLOSE_MS);
          idleTimer.unref();
        }
      };
    },
    async close() {
      closed = true;
      if (idleTimer) clearTimeout(idleTimer);
      await stop();
    },
  };
}
