// Manual entries for events no trigger sees (access, export, login…), written by the
// log_event() SQL function with the session context of the calling transaction.
import type { LogEventInput } from '../interfaces';
import { inCallerSession, invalid, keysJson, parseTable, schemaOf, type Db } from './common';

const ACTION = /^[a-z][a-z0-9_.:-]{0,62}$/;
/** The verbs pg-auditlog writes itself; log_event() refuses them too (sql: reserved_action()). */
export const RESERVED_ACTIONS = ['insert', 'update', 'delete', 'truncate', 'ddl', 'bypass', 'bypass_refused', 'flush', 'retention', 'baseline'];
const KEYS = new Set(['schema', 'action', 'table', 'objectPk', 'objectRepr', 'data']);

/**
 * Records a manual entry and returns its id. Given a pool, it joins the enclosing
 * withAuditSession() (or opens a transaction with its context); given a client, it writes in
 * that client's transaction with whatever context is set there.
 */
export async function logEvent(db: Db, event: LogEventInput): Promise<string> {
  for (const key of Object.keys(event)) {
    if (!KEYS.has(key)) throw invalid(`unknown logEvent field "${key}"; expected ${[...KEYS].join(', ')}`);
  }
  if (typeof event.action !== 'string' || !ACTION.test(event.action)) {
    throw invalid(`event action ${JSON.stringify(event.action)} must be a lower-case verb such as "access", "export" or "login" (letters, digits, _ . : -, at most 63 characters)`);
  }
  if (RESERVED_ACTIONS.includes(event.action)) {
    throw invalid(`event action "${event.action}" is reserved: pg-auditlog writes it itself (${RESERVED_ACTIONS.join(', ')}); use another verb, e.g. "access", "export" or "login"`);
  }
  if (event.data !== undefined && (typeof event.data !== 'object' || event.data === null || Array.isArray(event.data))) {
    throw invalid('event data must be a plain object');
  }
  if (event.objectPk !== undefined && event.table === undefined) throw invalid('objectPk needs the table it belongs to');
  return writeEvent(db, event, 'log_event');
}

/**
 * An entry with a verb the system itself writes ('flush'), through append_event(), which only
 * roles that may write the log can run. Not exported from the package.
 */
export function logSystemEvent(db: Db, event: LogEventInput): Promise<string> {
  return writeEvent(db, event, 'append_event');
}

async function writeEvent(db: Db, event: LogEventInput, fn: 'log_event' | 'append_event'): Promise<string> {
  const table = event.table === undefined ? null : parseTable(event.table);
  const key = event.objectPk === undefined ? null : JSON.stringify(JSON.parse(keysJson([event.objectPk]))[0]);
  const data = event.data === undefined ? null : JSON.stringify(event.data);
  const schema = schemaOf(event);
  return inCallerSession(db, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      `SELECT ${schema}.${fn}($1, $2, $3, $4::jsonb, $5, $6::jsonb) AS id`,
      [event.action, table?.schema ?? null, table?.name ?? null, key, event.objectRepr ?? null, data],
    );
    return rows[0]!.id;
  });
}
