// The whole public surface of pg-auditlog in one place; index.ts only re-exports.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool } from 'pg';
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
  /** Policy for writes without an actor on this table; default: the top-level `unattributed`. */
  unattributed?: UnattributedPolicy;
  /**
   * This table's entries go to their own table of the audit schema (a partition of
   * log_entry, read through it as before), e.g. "users_log". See docs/partitioning.md.
   */
  logTable?: string;
}

/** Time partitioning of the log (`partitioning` in the config). See docs/partitioning.md. */
export interface PartitioningConfig {
  /** One partition per day, ISO week (from Monday) or month, in UTC. */
  interval: 'day' | 'week' | 'month';
  /** `auditlog maintain` drops partitions wholly older than this, e.g. "13 months", "90 days". */
  retention?: string;
  /** Partitions kept ready ahead of now. Default 7 days, 4 weeks or 3 months. */
  premake?: number;
}

/**
 * What a write with no actor set does. `allow` (default): recorded with actor NULL, nothing
 * generated. `warn`: recorded, and a PostgreSQL WARNING names the table. `reject`: the write
 * fails inside its transaction with an error naming the table.
 */
export type UnattributedPolicy = 'allow' | 'warn' | 'reject';

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
  /** Who owns the log, who writes through it, who may switch capture off. See docs/security.md. */
  roles?: RolesConfig;
  /** Seal committed entries into a hash chain that `auditlog verify` checks. Default false. */
  tamperEvidence?: boolean;
  /** Row-level security on the log: non-owner roles read only their transaction's tenant. Default false. */
  tenantIsolation?: boolean;
  /** Writes without an actor: allow (default), warn, or reject. Overridable per table. */
  unattributed?: UnattributedPolicy;
  /** Range-partition the log on `ts` (opt-in; `auditlog install` converts an existing log). */
  partitioning?: PartitioningConfig;
  /** With `partitioning`: `auditlog maintain` drops partitions wholly older than this, e.g. "13 months". Same as `partitioning.retention`. */
  retention?: string;
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

/** Options of auditContextMiddleware() (Express, Connect) and fastifyAuditContext. */
export interface AuditContextOptions<Req = any> {
  /** The actor of a request (sync or async), e.g. `(req) => req.user?.id`. Undefined/null: no actor. */
  actor?: (req: Req) => string | number | bigint | null | undefined | Promise<string | number | bigint | null | undefined>;
  /** The tenant of a request (tenantIsolation), sync or async. */
  tenant?: (req: Req) => string | number | null | undefined | Promise<string | number | null | undefined>;
  /** More keys for additional_data (besides method, route and, with OpenTelemetry, trace_id). */
  data?: (req: Req) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Header carrying the correlation id, read and echoed. Default "X-Correlation-ID". */
  correlationIdHeader?: string;
  /**
   * Makes a correlation id when the request has none or an invalid one (valid: 1 to 128 of
   * A-Z a-z 0-9 . _ : / + = @ -, starting with a letter or digit). Default crypto.randomUUID.
   */
  generateCorrelationId?: () => string;
  /** Set the correlation id header on the response. Default true. */
  echoCorrelationId?: boolean;
  /**
   * Proxies whose X-Forwarded-For is believed: addresses or CIDR ranges ("10.0.0.0/8",
   * "::1"), or a predicate. Default none: the client IP is the socket's peer address.
   */
  trustedProxies?: string[] | ((addr: string) => boolean);
}

export interface FastifyAuditContextOptions<Req = any> extends AuditContextOptions<Req> {
  /** The request hook that makes the context (after your authentication hook). Default "onRequest". */
  hook?: 'onRequest' | 'preParsing' | 'preValidation' | 'preHandler';
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
  /**
   * Findings beyond the tables' states, each saying what to do: a cast to json/jsonb that a
   * non-superuser defined for a type an audited table uses.
   */
  problems: string[];
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

/** A history query plus free text matched (case-insensitively) in object_repr and object_pk. */
export interface HistorySearchQuery extends HistoryQuery {
  text: string;
  /** Most entries a page examines (newest first, along the other filters' index). Default 25000. */
  scanLimit?: number;
}

export interface HistorySearchPage extends HistoryPage {
  /** Entries examined for this page. */
  scanned: number;
  /** The scan reached scanLimit before the page was full: nextCursor continues with older entries. */
  partial: boolean;
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
  /** Entries removed by retention (dropped partitions, flush) since sealing began: excused, not missing. */
  droppedEntries: number;
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

// ---------------------------------------------------------------------------------------------
// The web viewer (src/viewer): `auditlog serve`, auditViewer()

export interface ViewerOptions {
  /** The pool the viewer reads with: it sees what this pool's database role may see. */
  pool: Pool;
  /** Audit schema. Default "auditlog". */
  schema?: string;
  /**
   * Required on every request (pages, JSON, assets, live stream) when set: `?token=` once (then
   * an HttpOnly cookie) or `Authorization: Bearer`. At least 16 characters. Leave it out when
   * the viewer is mounted behind the application's own login.
   */
  token?: string;
  /** The tenant whose entries this request may read (sets auditlog.tenant for tenant isolation). */
  tenant?: (req: IncomingMessage) => string | undefined | Promise<string | undefined>;
  /**
   * Live updates: an in-memory subscribe() on this connection string (default: the pool's
   * connectionString). `false`: no subscriber; open pages still look for new entries every 5 s.
   */
  live?: false | { connectionString?: string; pollIntervalMs?: number };
  /** Entries per page. Default 50. */
  pageSize?: number;
  /** statement_timeout of every viewer query, in ms. Default 10000. */
  statementTimeoutMs?: number;
  /** Operational messages (errors, live stream problems). Default: console.warn. */
  log?: (line: string) => void;
}

/** A Connect-style handler `(req, res, next)`: for node:http, Express (`app.use(path, …)`), a Fastify route. */
export interface AuditViewer {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /** Ends open live streams and the live subscription. */
  close(): Promise<void>;
}

export interface ServeOptions extends ViewerOptions {
  /** Default "127.0.0.1". Any address that is not loopback needs a token. */
  host?: string;
  /** Default 4680; 0 picks a free port. */
  port?: number;
}

export interface ViewerServer {
  /** e.g. http://127.0.0.1:4680/ */
  url: string;
  port: number;
  close(): Promise<void>;
}

// Forwarding to a broker (src/forward)

/** Options of forwardToNats(); also what `auditlog forward` passes. */
export interface ForwardToNatsOptions extends EventFilter {
  /** PostgreSQL connection string of the audited database. */
  connectionString: string;
  /** NATS server URL(s), e.g. "nats://127.0.0.1:4222". */
  servers: string | string[];
  /** JetStream stream; created (subjects "auditlog.>") when missing. Default "AUDITLOG". */
  stream?: string;
  /**
   * Name of the durable cursor (in <schema>.subscriber_cursor) and of the NATS connection. A
   * restarted forwarder with the same name continues where it left off. Default "forwarder".
   */
  name?: string;
  /** Audit schema. Default "auditlog". */
  schema?: string;
  /** Where a cursor seen for the first time starts. Default "beginning" (every entry in the log). */
  startFrom?: 'beginning' | 'now';
  /** Most entries read and published per round; all are acknowledged before the cursor moves. Default 500. */
  batchSize?: number;
  /**
   * Duplicate window of a stream this call creates (not changed on an existing stream): a
   * republished entry is dropped by JetStream when its first copy is younger than this.
   * Default 10 minutes.
   */
  duplicateWindowMs?: number;
  /** How long to wait for one publish acknowledgement before retrying the batch. Default 10 s. */
  publishTimeoutMs?: number;
  /**
   * Identifies this database in each message id, so that two databases forwarding into one
   * stream never drop each other's entries as duplicates. Default: the cluster's system
   * identifier, the database OID and the audit schema.
   */
  source?: string;
  /** Retry delays for a failed publish or lost connection. Default 100 ms doubling to 10 s. */
  retry?: { minDelayMs?: number; maxDelayMs?: number };
  /** Operational messages (connections lost and restored, stream created). Default: console.warn. */
  log?: (line: string) => void;
}

/** What one forwarded batch did, passed to the "forwarded" event. */
export interface ForwardedBatch {
  /** Entries in the batch, all acknowledged by JetStream before the cursor moved past them. */
  entries: number;
  /** Of these, how many JetStream already held (redelivered after a restart or retry) and dropped. */
  duplicates: number;
  /** Id of the batch's last entry. */
  lastEntryId: string;
  /** Stream sequence of the batch's last stored message (0 if every message was a duplicate). */
  lastSequence: number;
}

export interface Forwarder {
  /** The cursor name. */
  readonly name: string;
  /** The JetStream stream published to. */
  readonly stream: string;
  /** The source part of every Nats-Msg-Id ("<source>:<entry id>"). */
  readonly source: string;
  /**
   * "error": a publish failed or a connection was lost (retried with backoff, forever); without
   * a listener these go to `log`. "forwarded": a batch was acknowledged and the cursor stored.
   */
  on(event: 'error', listener: (err: AuditLogError) => void): this;
  on(event: 'forwarded', listener: (batch: ForwardedBatch) => void): this;
  off(event: 'error' | 'forwarded', listener: (...args: any[]) => void): this;
  /** Stops: lets a batch in flight be acknowledged and its cursor stored, then closes both connections. */
  close(): Promise<void>;
}

// Partition maintenance (src/maintain)

export interface MaintainOptions {
  /** Instant to plan for (tests, dry runs). Default: the database's now(). */
  now?: Date;
  /** Wait at most this long for a lock on the log per step (default 5000 ms); a step that times out is retried by the next run. */
  lockTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface MaintainResult {
  /** Partitions created (ahead of now, or for entries caught by a default partition). */
  created: string[];
  /** Entries moved out of default partitions into their own. */
  moved: number;
  /** Partitions dropped by retention. */
  dropped: string[];
  /** Entries in the dropped partitions. */
  droppedEntries: number;
  /** Steps skipped because a lock was not granted in time (run again later). */
  skipped: string[];
}
