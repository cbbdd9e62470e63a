// The dedicated LISTEN connection (pg-listen). Notifications are only wake-ups: entries are
// always read from the table, so a lost notification costs latency, never an entry.
import type { ClientConfig } from 'pg';
import createPostgresSubscriber from 'pg-listen';
import { AuditLogError } from '../errors';
import { backoffDelay, type BackoffOptions } from './backoff';

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
  let closed = false;
  let lostAt = 0;
  const pgl = createPostgresSubscriber(options.connection, {
    parse: parsePayload,
    // pg-listen gives up reconnecting after retryTimeout (3 s by default) and then stays silent
    // forever. A subscriber must outlive any outage: retry forever, with capped backoff.
    retryLimit: Infinity,
    retryTimeout: Infinity,
    retryInterval: (attempt) => {
      // Throwing here is the only way to stop pg-listen's reconnect loop after close().
      if (closed) throw new Error('listener closed');
      return backoffDelay(attempt + 1, options.backoff);
    },
    // Detects a connection that died silently (no FIN, e.g. a dropped NAT entry).
    paranoidChecking: 10_000,
  });

  pgl.events.on('reconnect', (attempt) => {
    if (closed) return;
    if (attempt === 1) {
      lostAt = Date.now();
      options.log(`lost the LISTEN connection to PostgreSQL; reconnecting with backoff up to ${options.backoff.maxDelayMs} ms, forever (entries written meanwhile are caught up from the cursor)`);
    } else if (attempt % 10 === 0) {
      options.log(`still reconnecting the LISTEN connection (attempt ${attempt}, ${Math.round((Date.now() - lostAt) / 1000)} s)`);
    }
  });
  pgl.events.on('connected', () => {
    if (closed) {
      // A reconnect attempt that was already under way when close() ran: end it too.
      void pgl.close().catch(() => undefined);
      return;
    }
    if (lostAt !== 0) {
      options.log(`LISTEN connection restored after ${Date.now() - lostAt} ms; catching up from the cursor`);
      lostAt = 0;
      options.onReconnected();
    }
  });
  pgl.events.on('error', (err) => {
    if (closed) return;
    options.onError(new AuditLogError('LISTENER_FAILED', `LISTEN connection failed: ${err.message}`, { cause: err }));
  });
  pgl.events.on('notification', (n) => options.onNotification(n.payload as NotificationPayload | undefined));

  try {
    await pgl.connect();
    await pgl.listenTo(options.channel);
  } catch (err) {
    closed = true;
    await pgl.close().catch(() => undefined);
    throw new AuditLogError('LISTENER_FAILED', `could not LISTEN on "${options.channel}": ${(err as Error).message}; check the connection string and that the server is up`, { cause: err });
  }

  return {
    async close() {
      if (closed) return;
      closed = true;
      await pgl.close().catch(() => undefined);
    },
  };
}
