// The dedicated LISTEN connection (pg-listen). Notifications are only wake-ups: entries are
// always read from the table, so a lost notification costs latency, never an entry.
import type { ClientConfig } from 'pg';
import createPostgresSubscriber, { type Subscriber } from 'pg-listen';
import { AuditLogError } from '../errors';
import { backoffDelay, sleep, type BackoffOptions } from './backoff';

export interface NotificationPayload {
  id?: number;
  schema?: string;
  table?: string;
  action?: string;
}

export interface ListenerOptions {
  connection: ClientConfig;
  channel: string;
  backoff: BackoffOptions;
  log: (line: string) => void;
  /** A notification arrived; payload is undefined when it was not our JSON. */
  onNotification: (payload: NotificationPayload | undefined) => void;
  /** The connection came back: notifications may have been missed, catch up. */
  onReconnected: () => void;
  onError: (err: AuditLogError) => void;
}

export interface Listener {
  close(): Promise<void>;
}

/** Never throws: a foreign or malformed payload on our channel must not become an error. */
function parsePayload(text: string): NotificationPayload | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as NotificationPayload) : undefined;
  } catch {
    return undefined;
  }
}

export async function startListener(options: ListenerOptions): Promise<Listener> {
  const closing = new AbortController();
  let lostAt = 0;
  let current: Subscriber;
  const listening = new WeakSet<Subscriber>();

  const lost = () => {
    if (lostAt !== 0) return;
    lostAt = Date.now();
    options.log(`lost the LISTEN connection to PostgreSQL; reconnecting with backoff up to ${options.backoff.maxDelayMs} ms, forever (entries written meanwhile are caught up from the cursor)`);
  };
  const restored = () => {
    if (lostAt === 0) return;
    options.log(`LISTEN connection restored after ${Date.now() - lostAt} ms; catching up from the cursor`);
    lostAt = 0;
    options.onReconnected();
  };

  function create(): Subscriber {
    const pgl = createPostgresSubscriber(options.connection, {
      parse: parsePayload,
      // pg-listen gives up reconnecting after retryTimeout (3 s by default) and then stays silent
      // forever. A subscriber must outlive any outage: retry forever, with capped backoff.
      retryLimit: Infinity,
      retryTimeout: Infinity,
      retryInterval: (attempt) => {
        // Throwing here is the only way to stop pg-listen's reconnect loop: after close(), or
        // in an instance that was replaced.
        if (stale()) throw new Error('listener closed');
        return backoffDelay(attempt + 1, options.backoff);
      },
      // Detects a connection that died silently (no FIN, e.g. a dropped NAT entry).
      paranoidChecking: 10_000,
    });
    const stale = () => closing.signal.aborted || pgl !== current;
    pgl.events.on('reconnect', (attempt) => {
      if (stale()) return;
      lost();
      if (attempt % 10 === 0) {
        options.log(`still reconnecting the LISTEN connection (attempt ${attempt}, ${Math.round((Date.now() - lostAt) / 1000)} s)`);
      }
    });
    pgl.events.on('connected', () => {
      if (stale()) {
        // A reconnect that was under way when close() ran or this instance was replaced.
        void pgl.close().catch(() => undefined);
        return;
      }
      // The first 'connected' comes before LISTEN; connect() reports that one itself.
      if (listening.has(pgl)) restored();
    });
    pgl.events.on('error', (err) => {
      if (stale()) return;
      // pg-listen stops for good when re-LISTEN after a reconnect fails: start a new one.
      options.onError(new AuditLogError('LISTENER_FAILED', `LISTEN connection failed: ${err.message}; starting a new one`, { cause: err }));
      void replace(pgl);
    });
    pgl.events.on('notification', (n) => {
      if (!stale()) options.onNotification(n.payload as NotificationPayload | undefined);
    });
    return pgl;
  }

  async function connect(pgl: Subscriber): Promise<void> {
    await pgl.connect();
    await pgl.listenTo(options.channel);
    listening.add(pgl);
  }

  async function replace(broken: Subscriber): Promise<void> {
    lost();
    await broken.close().catch(() => undefined);
    for (let attempt = 1; !closing.signal.aborted; attempt++) {
      await sleep(backoffDelay(attempt, options.backoff), closing.signal);
      if (closing.signal.aborted) return;
      const pgl = create();
      current = pgl;
      try {
        await connect(pgl);
        if (closing.signal.aborted) await pgl.close().catch(() => undefined);
        else restored();
        return;
      } catch {
        await pgl.close().catch(() => undefined);
      }
    }
  }

  current = create();
  try {
    await connect(current);
  } catch (err) {
    closing.abort();
    await current.close().catch(() => undefined);
    throw new AuditLogError('LISTENER_FAILED', `could not LISTEN on "${options.channel}": ${(err as Error).message}; check the connection string and that the server is up`, { cause: err });
  }

  return {
    async close() {
      if (closing.signal.aborted) return;
      closing.abort();
      await current.close().catch(() => undefined);
    },
  };
}
