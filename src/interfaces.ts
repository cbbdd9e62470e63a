// The whole public surface of pg-auditlog in one place; index.ts only re-exports.

/** A DML action captured by triggers. */
export type CapturedAction = 'insert' | 'update' | 'delete' | 'truncate';

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
  includeAll?: IncludeAllConfig;
  /** Keyed by "schema.table" (SQL identifier syntax: unquoted parts fold to lower case). */
  tables?: Record<string, TableConfig>;
  /** Who owns the log, who writes through it, who may switch capture off. See docs/security.md. */
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
