// The ambient audit context: one AsyncLocalStorage store shared by withAuditSession(),
// runWithAuditContext() and the integrations (auditPool, middleware), so every query made while
// handling a request or a job sees the same who and why.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ClientBase, Pool } from 'pg';
import type { AuditContext } from '../interfaces';

/** The withAuditSession() call a piece of code runs inside: its pool (or client) and client. */
export interface SessionBinding {
  pool: Pool | null;
  client: ClientBase;
}

export interface AmbientState {
  context: AuditContext;
  /** Set inside withAuditSession(): nested calls on the same pool or client reuse its client. */
  session?: SessionBinding;
}

export const ambient = new AsyncLocalStorage<AmbientState>();

/** `inner` over `outer`; `data` objects are merged too (inner keys win). */
export function extendContext(outer: AuditContext | undefined, inner: AuditContext | null | undefined): AuditContext {
  if (!outer) return { ...inner };
  if (!inner) return { ...outer };
  const merged: AuditContext = { ...outer, ...inner };
  if (outer.data && inner.data) merged.data = { ...outer.data, ...inner.data };
  return merged;
}

/** The audit context of the code running now (runWithAuditContext, withAuditSession, middleware), if any. */
export function getAuditContext(): AuditContext | undefined {
  return ambient.getStore()?.context;
}

/**
 * The ambient context as a plain JSON-safe object, to put into a queued job's payload and
 * restore in the worker with runWithAuditContext(payload.auditContext, fn). Undefined when
 * there is no context.
 */
export function serializeAuditContext(): AuditContext | undefined {
  const ctx = getAuditContext();
  if (!ctx) return undefined;
  // A JSON round trip: the job queue stores JSON, so the job sees what the queue will give back.
  return JSON.parse(JSON.stringify(ctx)) as AuditContext;
}
