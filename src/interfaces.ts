// The whole public surface of pg-auditlog in one place; index.ts only re-exports.
import type { AuditLogError } from './errors';

/** A DML action captured by triggers. */
export type CapturedAction = 'insert' | 'update' | 'delete' | 'truncate';

/**
 * How changes are captured; both write the same entries. `statement`: one trigger per statement
 * with transition tables, set-wise diffs (fast on bulk writes). `row`: one trigger call per row.
 */
export type CaptureMode = 'row' | 'statement';

/** Per-table capture settings (the values of `tables` in auditlog.config.*). */
export interface TableConfig {
  /** Only these columns are tracked (mutually exclusive with `exclude` on the same column). */
  include?: string[];
  /** These columns are never compared nor stored. */
  exclude?: string[];
  /** Stored as "[masked]" in changes and snapshots; a change is still visible as a change. */
  mask?: string[];
  /** Display names for columns, used by readers of the log. */
  mapping?: Record<string, string>;
  /** Column whose value becomes `object_repr` of each entry. */
  objectRepr?: string;
  /** Store the full (masked) row in `snapshot`. */
  snapshot?: boolean;
  /** Actions to capture; default all four. */
  actions?: CapturedAction[];
  /** Columns that identify a row when the table has no primary key. */
  primaryKey?: string[];
  /** Capture mode for this table; default: the top-level `mode`. */
  mode?: CaptureMode;
}

export interface IncludeAllConfig {
  /** Every ordinary or partitioned table in these schemas is audited. */
  schemas: string[];
  /** Tables (schema.table) left out. */
  except?: string[];
}

/** The shape of auditlog.config.{ts,js,json}. */
export interface AuditConfig {
  /** Schema holding the log and generated functions. Default "auditlog". */
  schema?: string;
  /** Columns excluded from every table (e.g. updated_at); silently skipped where absent. */
  excludeFields?: string[];
  /** Default capture mode of every table. Default "statement". */
  mode?: CaptureMode;
  includeAll?: IncludeAllConfig;
  /** Keyed by "schema.table" (SQL identifier syntax: unquoted parts fold to lower case). */
  tables?: Record<string, TableConfig>;
  /** Who owns the log, who writes through it, who may switch capture off. See README.md, Security. */
  roles?: RolesConfig;
  /** Seal committed entries into a hash chain that `auditlog verify` checks. Default false. */
  tamperEvidence?: boolean;
  /** Row-level security on the log: non-owner roles read only their transaction's tenant. Default false. */
  tenantIsolation?: boolean;
}

/** Role separation, applied by `auditlog install` (flags --owner-role, --app-role override). */
export interface RolesConfig {
  /** Owns the audit schema, its tables and the SECURITY DEFINER capture functions (created NOLOGIN if missing). */
  owner?: string;
  /** The application's login role: gets no write privilege on the log; must not own audited tables. */
  app?: string;
  /** Whether `app` may SELECT the log (filtered by tenantIsolation). Default true. */
  appReadsLog?: boolean;
  /** Members may switch capture off per transaction. Default "auditlog_bypass" (created if missing). */
  bypass?: string;
}

/** Who and why, carried by transaction-local settings into every entry. */
export interface AuditContext {
  actor?: string;
  /** Correlation id (request id, job id). */
  cid?: string;
  /** Client IP address (IPv4 or IPv6, optionally with /prefix). */
  remoteAddr?: string;
  /** Any JSON-serialisable object, stored in additional_data. */
  data?: Record<string, unknown>;
  tenant?: string;
  /**
   * Switch capture off for this transaction (bulk imports). Honoured only when the database
   * role is a member of the bypass role; otherwise ignored and recorded as `bypass_refused`.
   */
  disable?: boolean;
}

/** One row of auditlog.log_entry, as read by node-postgres. */
export interface LogEntry {
  id: string;
  ts: Date;
  txid: string;
  table_schema: string | null;
  table_name: string | null;
  object_pk: string | null;
  object_repr: string | null;
  action: string;
  changes: Record<string, [unknown, unknown]> | null;
  snapshot: Record<string, unknown> | null;
  actor: string | null;
  cid: string | null;
  remote_addr: string | null;
  db_user: string;
  application_name: string | null;
  additional_data: Record<string, unknown> | null;
  tenant_id: string | null;
}

/** A table's capture state as `status` reports it. */
export type TableState = 'installed' | 'outdated' | 'missing' | 'orphaned';

export interface TableStatus {
  table: string;
  state: TableState;
  /** Why it is not `installed`, and what to do. */
  detail?: string;
}

export interface StatusReport {
  schema: string;
  /** Audit schema migrations not yet applied (0 when up to date). */
  pendingMigrations: number;
  tables: TableStatus[];
  /** True when anything differs from the config: `auditlog status` exits 1. */
  drift: boolean;
  /**
   * Whether the DDL watch is installed (it needs a superuser installer). Without it, dropping
   * or renaming a tracked column makes writes to that table fail until `auditlog install`.
   */
  ddlWatch: boolean;
}

export interface InstallOptions {
  /** Also remove capture from tables that are no longer in the config. */
  prune?: boolean;
  /** Override the config's `roles` (the CLI's --owner-role, --app-role, --bypass-role flags). */
  roles?: RolesConfig;
  /** Called with one line per step, for progress output. */
  log?: (line: string) => void;
}

export interface InstallResult {
  /** Audit schema migrations applied by this run. */
  migrationsApplied: string[];
  /** Tables whose capture was created or replaced. */
  installed: string[];
  /** Tables already up to date, left untouched. */
  unchanged: string[];
  /** Tables whose capture was removed (with `prune`). */
  pruned: string[];
}

export interface UninstallOptions {
  /** Also drop the audit schema with every log entry in it. */
  dropSchema?: boolean;
  log?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------
// History, time travel, manual events, retention, reports (src/history)

/**
 * A primary key as the API takes it: a value for a one-column key (`42`, `'a1'`), an array
 * for a composite key in key-column order (`[7, 2]`). Stored in object_pk as text: `'42'`,
 * `'[7, 2]'`.
 */
export type ObjectKey = string | number | bigint | Array<string | number | bigint | boolean | null>;

/** Options every history function takes. */
export interface HistoryOptions {
  /** Audit schema. Default "auditlog". */
  schema?: string;
}

/** What to read from the log. Filters combine with AND; at least one of them is required. */
export interface HistoryQuery extends HistoryOptions {
  /** "schema.table" or "table" (schema public). Required with `objectPk` / `objectPks`. */
  table?: string;
  /** One object of `table`. */
  objectPk?: ObjectKey;
  /** Several objects of `table`. */
  objectPks?: ObjectKey[];
  actor?: string;
  /** Correlation id. */
  cid?: string;
  /** One transaction: the `txid` of any of its entries. */
  txid?: string | bigint;
  /** Only these actions (e.g. ['update', 'delete'], or custom verbs). */
  actions?: string[];
  /** Entries at or after this instant (Date or ISO 8601 text). */
  since?: Date | string;
  /** Entries before this instant (exclusive). */
  until?: Date | string;
  /** Default 'newest' (newest first). */
  order?: 'newest' | 'oldest';
  /** Page size, 1 to 1000. Default 100. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string | null;
}

export interface HistoryPage {
  entries: LogEntry[];
  /** Pass as `cursor` for the next page; null when this page is the last. */
  nextCursor: string | null;
}

/** One changed field, ready to show. */
export interface FieldChangeDisplay {
  /** Column name as stored. */
  field: string;
  /** Display name from the table's `mapping`, else the column name. */
  label: string;
  old: unknown;
  new: unknown;
  /** The values are masked: only the fact that it changed is known. */
  masked: boolean;
}

/** A log entry with what a reader needs: display names, masked values flagged, a summary. */
export interface DisplayEntry extends LogEntry {
  /** `{ label: [old, new] }`, like django-auditlog's changes_display_dict. */
  changesDisplay: Record<string, [unknown, unknown]>;
  fields: FieldChangeDisplay[];
  /** One line, like django-auditlog's changes_str: `E-mail address: "a" → "b"; ssn: changed (masked)`. */
  summary: string;
}

/** A manual entry for an event no trigger sees. */
export interface LogEventInput extends HistoryOptions {
  /** 'access', 'export', 'login' or any lower-case verb; not insert/update/delete/truncate. */
  action: string;
  /** "schema.table" or "table": the table the event concerns, if any. */
  table?: string;
  /** The object of `table` the event concerns, if any. */
  objectPk?: ObjectKey;
  objectRepr?: string;
  /** Stored in additional_data, merged over the session's `data` (the event's keys win). */
  data?: Record<string, unknown>;
}

export interface RevertOptions extends HistoryOptions {
  /** Write the old values back even if the row changed again after the entry. */
  force?: boolean;
}

export interface RevertResult {
  table: string;
  objectPk: string;
  /** Columns written back. */
  fields: string[];
}

export interface BaselineOptions extends HistoryOptions {
  /** Only this audited table ("schema.table" or "table"). Default: every audited table. */
  table?: string;
  /** Rows per batch, each batch its own short transaction. Default 1000. */
  batchSize?: number;
  /** Progress, one line per batch. */
  log?: (line: string) => void;
}

export interface BaselineResult {
  tables: Array<{ table: string; scanned: number; recorded: number }>;
  /** baseline entries written, over all tables. */
  recorded: number;
}

/**
 * What stateAt() returns when the log cannot tell the object's state at that instant: before
 * its earliest entry when that entry is not an `insert` (the row existed before, unrecorded:
 * an update, a delete, or a `baseline` entry), or when the object has no entries at all.
 * `null` always means "did not exist then".
 */
export interface UnknownState {
  readonly unknown: true;
  reason: 'no-entries' | 'before-first-entry' | 'before-baseline';
  /** The earliest entry of the object, when there is one. */
  earliest: { id: string; ts: Date; action: string } | null;
}

export interface FlushOptions extends HistoryOptions {
  /** Delete entries before this instant: ISO 8601 date (UTC midnight) or date-time with zone. Omitted: all. */
  beforeDate?: string;
  /** Only this table ("schema.table" or "table"). */
  table?: string;
  /** Entries deleted per transaction. Default 5000. */
  batchSize?: number;
  /** Called after each committed batch with the running total; awaited before the next batch. */
  progress?: (deleted: number) => void | Promise<void>;
}

export interface FlushResult {
  deleted: number;
  batches: number;
}

export interface ReportOptions extends HistoryOptions {
  /** Default: 30 days before `until`. */
  since?: Date | string;
  /** Default: now. Exclusive. */
  until?: Date | string;
}

export interface ReportCount {
  key: string | null;
  count: number;
}

/** Counts of entries in [since, until), like get_audit_summary. */
export interface AuditReport {
  since: Date;
  until: Date;
  total: number;
  /** By "schema.table"; key null for events without a table. Largest first. */
  byTable: ReportCount[];
  byAction: ReportCount[];
  /** Key null for entries without an actor. */
  byActor: ReportCount[];
}

/** Which entries a subscriber receives; every filter given must match. */
export interface EventFilter {
  /** Tables as "schema.table" (SQL identifier rules; a bare name means public). Default: all. */
  tables?: string[];
  /** Actions (insert, update, delete, truncate or a custom verb). Default: all. */
  actions?: string[];
  /** Actors (the auditlog.actor of the writing session). Default: any, including none. */
  actors?: string[];
}

export interface SubscribeOptions extends EventFilter {
  /** PostgreSQL connection string. The subscriber opens two connections: LISTEN and queries. */
  connectionString: string;
  /**
   * Name of the durable cursor, stored in <schema>.subscriber_cursor: a restarted subscriber
   * continues where this name left off. Without a name the position lives in memory only
   * (a tail), and the subscription starts at "now".
   */
  name?: string;
  /** Audit schema. Default "auditlog". */
  schema?: string;
  /**
   * Where a cursor seen for the first time starts: "beginning" (every entry in the log) or
   * "now" (only entries committed from here on). Default "beginning" for a named cursor, "now"
   * without a name. Ignored once the cursor exists.
   */
  startFrom?: 'beginning' | 'now';
  /** Most entries per hook call. Default 500. */
  batchSize?: number;
  /** A batch is cut once its entries' stored size passes this (at least one entry). Default 16 MiB. */
  maxBatchBytes?: number;
  /** Look for entries even without a notification this often. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Retry delays for a failing hook or lost connection. Default 100 ms doubling to 10 s. */
  retry?: { minDelayMs?: number; maxDelayMs?: number };
  /** Operational messages (connection lost/restored). Default: console.warn with a prefix. */
  log?: (line: string) => void;
}

/**
 * Receives a batch of committed entries, in id order, at least once each. Return (or resolve)
 * only when they are handled: the cursor advances after that. Throw to have the batch retried.
 */
export type PostLogHook = (entries: LogEntry[]) => void | Promise<void>;

export interface Subscription {
  /** The cursor name, or undefined for an in-memory cursor. */
  readonly name: string | undefined;
  /**
   * "error": a hook call failed (code HOOK_FAILED, retried with backoff) or the database could
   * not be reached (retried forever). Without a listener these are written to `log`.
   * "delivered": a batch was handled and the cursor moved past it.
   */
  on(event: 'error', listener: (err: AuditLogError) => void): this;
  on(event: 'delivered', listener: (entries: LogEntry[]) => void): this;
  off(event: 'error' | 'delivered', listener: (...args: any[]) => void): this;
  /**
   * Stops: waits for a hook call in progress to finish and its cursor to be stored, then closes
   * both connections. A batch whose hook has not succeeded yet is delivered again next time.
   */
  close(): Promise<void>;
}

/** One finding of `verify`. `entryId` is null when a whole batch of seals is affected. */
export interface VerifyProblem {
  entryId: string | null;
  batch: string | null;
  problem: string;
}

export interface VerifyOptions {
  /** Seal newly committed entries before checking (default true). */
  seal?: boolean;
  /** "batch:hexdigest" recorded earlier (outside the database): the chain must still contain it. */
  anchor?: string;
}

export interface VerifyReport {
  /** Entries sealed by this run. */
  sealedNow: number;
  /** Entries covered by the chain. */
  sealedTotal: number;
  /** The newest chain link, "batch:hexdigest": store it elsewhere and pass it back as `anchor`. */
  head: string | null;
  problems: VerifyProblem[];
  /** Capture drift from `status` (dropped, disabled or outdated triggers). */
  status: StatusReport;
  /** No problem and no drift: `auditlog verify` exits 0. */
  intact: boolean;
}
