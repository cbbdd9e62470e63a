/** PostgreSQL SQLSTATE codes we react to, by name. */
export const PG = {
  UNDEFINED_TABLE: '42P01',
  UNDEFINED_OBJECT: '42704',
  UNDEFINED_FUNCTION: '42883',
  INSUFFICIENT_PRIVILEGE: '42501',
  IN_FAILED_TRANSACTION: '25P02',
  DUPLICATE_OBJECT: '42710',
  UNIQUE_VIOLATION: '23505',
} as const;

export type AuditLogErrorCode =
  | 'CONFIG_NOT_FOUND'
  | 'CONFIG_LOAD_FAILED'
  | 'CONFIG_INVALID'
  | 'CONTEXT_INVALID'
  | 'TRANSACTION_ABORTED'
  | 'NAME_TOO_LONG'
  | 'NO_DATABASE_URL'
  | 'CONFIRMATION_REQUIRED'
  | 'INSTALL_FAILED'
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'REVERT_REFUSED'
  | 'REVERT_CONFLICT'
  | 'OPTIONS_INVALID'
  | 'EVENTS_NOT_INSTALLED'
  | 'LISTENER_FAILED'
  | 'SUBSCRIBER_FAILED'
  | 'HOOK_FAILED'
  | 'UNSAFE_ROLES'
  | 'TAMPER_EVIDENCE_DISABLED'
  | 'CONNECTION_FAILED'
  | 'UNSAFE_BIND'
  | 'NATS_CLIENT_MISSING'
  | 'BROKER_UNREACHABLE'
  | 'STREAM_INVALID'
  | 'PUBLISH_FAILED';

/**
 * The one error type pg-auditlog throws. `code` is stable for programs; `message` says what
 * went wrong, where, and what to do; `problems` lists every finding when there are several.
 */
export class AuditLogError extends Error {
  readonly code: AuditLogErrorCode;
  readonly problems: string[];

  constructor(code: AuditLogErrorCode, message: string, options: { cause?: unknown; problems?: string[] } = {}) {
    super(message, { cause: options.cause });
    this.name = 'AuditLogError';
    this.code = code;
    this.problems = options.problems ?? [];
  }
}
