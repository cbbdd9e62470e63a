// Checks the shape of a config object (no database needed) and normalises it.
import { AuditLogError } from '../errors';
import { displayName, parseColumnName, parseQualifiedName, type QualifiedName } from '../ident';
import type { CaptureMode, CapturedAction, UnattributedPolicy } from '../interfaces';

export const ALL_ACTIONS: readonly CapturedAction[] = ['insert', 'update', 'delete', 'truncate'];
const TOP_LEVEL_KEYS = ['schema', 'mode', 'excludeFields', 'includeAll', 'tables', 'roles', 'tamperEvidence', 'tenantIsolation', 'unattributed', 'partitioning', 'retention'];
const POLICIES: readonly UnattributedPolicy[] = ['allow', 'warn', 'reject'];
const MODES: readonly CaptureMode[] = ['row', 'statement'];
export const DEFAULT_MODE: CaptureMode = 'statement';
const ROLE_KEYS = ['owner', 'app', 'appReadsLog', 'bypass'];
/** The bypass role when the config names none. Roles are cluster-wide: one serves every database. */
export const DEFAULT_BYPASS_ROLE = 'auditlog_bypass';
const TABLE_KEYS = ['include', 'exclude', 'mask', 'mapping', 'objectRepr', 'snapshot', 'actions', 'primaryKey', 'mode', 'unattributed', 'logTable'];

export interface NormalizedTableConfig {
  table: QualifiedName;
  /** The key as written in the config, for messages. */
  key: string;
  include?: string[];
  exclude: string[];
  mask: string[];
  mapping: Record<string, string>;
  objectRepr?: string;
  snapshot: boolean;
  actions: CapturedAction[];
  primaryKey?: string[];
  /** Unset: the config's default mode. */
  mode?: CaptureMode;
  /** Unset: the config's default policy. */
  unattributed?: UnattributedPolicy;
  /** Own log table in the audit schema (a partition of log_entry); unset: the shared log. */
  logTable?: string;
}

export interface NormalizedConfig {
  schema: string;
  mode: CaptureMode;
  excludeFields: string[];
  includeAll?: { schemas: string[]; except: QualifiedName[] };
  /** Tables named explicitly under `tables`. */
  tables: NormalizedTableConfig[];
  roles: NormalizedRoles;
  tamperEvidence: boolean;
  tenantIsolation: boolean;
  unattributed: UnattributedPolicy;
  /** Time partitioning of the log (`partitioning`); unset: one plain table. */
  partitioning?: NormalizedPartitioning;
  /**
   * Problems found without the database, kept (by checkConfig) so that resolving the config
   * against the catalog reports them together with the catalog's: every problem at once.
   */
  deferredProblems?: string[];
}

export interface NormalizedRoles {
  owner?: string;
  app?: string;
  appReadsLog: boolean;
  bypass: string;
}

export function defaultTableConfig(table: QualifiedName): NormalizedTableConfig {
  return { table, key: displayName(table), exclude: [], mask: [], mapping: {}, snapshot: false, actions: [...ALL_ACTIONS] };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates `raw` and returns it normalised; throws CONFIG_INVALID listing every problem. */
export function validateConfig(raw: unknown, source = 'config'): NormalizedConfig {
  const { config, problems } = checkConfig(raw, source);
  if (problems.length > 0) throw invalid(source, problems);
  return config;
}

/**
 * Like validateConfig, but returns the problems with the config normalised from its valid
 * parts, for a caller that goes on to check it against the database and reports both.
 * Throws only when `raw` is not an object at all.
 */
export function checkConfig(raw: unknown, source = 'config'): { config: NormalizedConfig; problems: string[] } {
  const problems: string[] = [];
  if (!isPlainObject(raw)) {
    throw new AuditLogError('CONFIG_INVALID', `${source}: expected an object (export default defineConfig({ … }))`);
  }
  for (const key of Object.keys(raw)) {
    if (!TOP_LEVEL_KEYS.includes(key)) problems.push(`unknown key "${key}"; expected one of ${TOP_LEVEL_KEYS.join(', ')}`);
  }

  let schema = 'auditlog';
  if (raw.schema !== undefined) {
    if (typeof raw.schema !== 'string' || raw.schema === '' || raw.schema.includes('\0')) {
      problems.push('"schema" must be a non-empty schema name, e.g. "auditlog"');
    } else {
      schema = raw.schema;
    }
  }

  const stringList = (value: unknown, where: string): string[] | undefined => {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '' || v.includes('\0'))) {
      problems.push(`${where} must be a list of names, e.g. ["updated_at"]`);
      return undefined;
    }
    return value as string[];
  };

  const excludeFields = (stringList(raw.excludeFields, '"excludeFields"') ?? []).map(parseColumnName);

  let mode = DEFAULT_MODE;
  if (raw.mode !== undefined) {
    if (!MODES.includes(raw.mode as CaptureMode)) problems.push(`"mode" must be "statement" or "row"`);
    else mode = raw.mode as CaptureMode;
  }

  let includeAll: NormalizedConfig['includeAll'];
  if (raw.includeAll !== undefined) {
    if (!isPlainObject(raw.includeAll)) {
      problems.push('"includeAll" must be an object like { "schemas": ["public"], "except": ["public.sessions"] }');
    } else {
      for (const key of Object.keys(raw.includeAll)) {
        if (key !== 'schemas' && key !== 'except') problems.push(`includeAll: unknown key "${key}"; expected schemas, except`);
      }
      const schemas = stringList(raw.includeAll.schemas, 'includeAll.schemas');
      if (!schemas || schemas.length === 0) problems.push('includeAll.schemas must name at least one schema');
      const except: QualifiedName[] = [];
      for (const text of stringList(raw.includeAll.except, 'includeAll.except') ?? []) {
        const name = parseQualifiedName(text);
        if (name) except.push(name);
        else problems.push(`includeAll.except: "${text}" is not a table name; write it as schema.table`);
      }
      includeAll = { schemas: schemas ?? [], except };
    }
  }

  const tables: NormalizedTableConfig[] = [];
  if (raw.tables !== undefined && !isPlainObject(raw.tables)) {
    problems.push('"tables" must be an object keyed by "schema.table"');
  } else {
    const seen = new Map<string, string>();
    for (const [key, value] of Object.entries(raw.tables ?? {})) {
      const name = parseQualifiedName(key);
      if (!name) {
        problems.push(`tables: "${key}" is not a table name; write it as schema.table (quote mixed-case parts: public."MyTable")`);
        continue;
      }
      const canonical = displayName(name);
      const clash = seen.get(canonical);
      if (clash !== undefined) {
        problems.push(`tables: "${key}" and "${clash}" name the same table ${canonical}; keep one`);
        continue;
      }
      seen.set(canonical, key);
      const table = validateTableConfig(name, key, value, problems);
      if (table) tables.push(table);
    }
  }

  const roles = validateRoles(raw.roles, problems);
  const flag = (key: 'tamperEvidence' | 'tenantIsolation'): boolean => {
    if (raw[key] === undefined) return false;
    if (typeof raw[key] !== 'boolean') problems.push(`"${key}" must be true or false`);
    return raw[key] === true;
  };
  const tamperEvidence = flag('tamperEvidence');
  const tenantIsolation = flag('tenantIsolation');
  const unattributed = policy(raw.unattributed, '"unattributed"', problems) ?? 'allow';

  const partitioning = validatePartitioning(raw.partitioning, problems);
  // "retention" is a top-level key (it only works by dropping partitions, so it needs
  // "partitioning"); the same inside "partitioning" is accepted too.
  if (raw.retention !== undefined) {
    if (raw.partitioning === undefined) {
      problems.push('"retention" drops whole partitions of the log: it needs "partitioning", e.g. "partitioning": { "interval": "month" }, "retention": "13 months"');
    } else if (isPlainObject(raw.partitioning) && raw.partitioning.retention !== undefined) {
      problems.push('"retention" is given twice, at the top level and inside "partitioning": keep one');
    } else if (partitioning) {
      const retention = typeof raw.retention === 'string' ? parseRetention(raw.retention) : undefined;
      if (!retention) problems.push(`"retention" must read like "13 months", "90 days", "52 weeks" or "2 years" (got ${JSON.stringify(raw.retention)})`);
      else partitioning.retention = retention;
    }
  }
  for (const t of tables) {
    if (t.logTable !== undefined && t.logTable === schema) problems.push(`tables["${t.key}"].logTable must differ from the audit schema name`);
  }

  if (!includeAll && tables.length === 0 && problems.length === 0) {
    problems.push('nothing to audit: add tables under "tables" or set "includeAll"');
  }
  return {
    config: { schema, mode, excludeFields, includeAll, tables, roles, tamperEvidence, tenantIsolation, unattributed, ...(partitioning ? { partitioning } : {}) },
    problems,
  };
}

function policy(value: unknown, where: string, problems: string[]): UnattributedPolicy | undefined {
  if (value === undefined) return undefined;
  if (POLICIES.includes(value as UnattributedPolicy)) return value as UnattributedPolicy;
  problems.push(`${where} must be "allow", "warn" or "reject"`);
  return undefined;
}

/** A role name as PostgreSQL stores it: non-empty, no NUL, at most 63 bytes (longer is truncated). */
export function roleNameProblem(value: unknown, where: string): string | undefined {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) return `${where} must be a role name`;
  if (Buffer.byteLength(value, 'utf8') > 63) return `${where}: role name "${value}" is longer than 63 bytes`;
  if (/^pg_/i.test(value)) return `${where}: "${value}": names starting with pg_ are reserved for PostgreSQL's own roles`;
  return undefined;
}

function validateRoles(raw: unknown, problems: string[]): NormalizedRoles {
  const out: NormalizedRoles = { appReadsLog: true, bypass: DEFAULT_BYPASS_ROLE };
  if (raw === undefined) return out;
  if (!isPlainObject(raw)) {
    problems.push('"roles" must be an object like { "owner": "auditlog_owner", "app": "app_user" }');
    return out;
  }
  for (const key of Object.keys(raw)) {
    if (!ROLE_KEYS.includes(key)) problems.push(`roles: unknown key "${key}"; expected one of ${ROLE_KEYS.join(', ')}`);
  }
  for (const key of ['owner', 'app', 'bypass'] as const) {
    if (raw[key] === undefined) continue;
    const problem = roleNameProblem(raw[key], `roles.${key}`);
    if (problem) problems.push(problem);
    else out[key] = raw[key] as string;
  }
  if (raw.appReadsLog !== undefined) {
    if (typeof raw.appReadsLog !== 'boolean') problems.push('roles.appReadsLog must be true or false');
    else out.appReadsLog = raw.appReadsLog;
  }
  return out;
}

function validateTableConfig(
  table: QualifiedName, key: string, value: unknown, problems: string[],
): NormalizedTableConfig | undefined {
  const at = `tables["${key}"]`;
  if (!isPlainObject(value)) {
    problems.push(`${at} must be an object (use {} for the defaults)`);
    return undefined;
  }
  for (const k of Object.keys(value)) {
    if (!TABLE_KEYS.includes(k)) problems.push(`${at}: unknown key "${k}"; expected one of ${TABLE_KEYS.join(', ')}`);
  }
  const columns = (field: string): string[] | undefined => {
    const v = value[field];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((c) => typeof c !== 'string' || c === '' || c.includes('\0'))) {
      problems.push(`${at}.${field} must be a list of column names`);
      return undefined;
    }
    return (v as string[]).map(parseColumnName);
  };
  const out = defaultTableConfig(table);
  out.key = key;
  out.include = columns('include');
  out.exclude = columns('exclude') ?? [];
  out.mask = columns('mask') ?? [];
  out.primaryKey = columns('primaryKey');
  if (out.include?.length === 0) problems.push(`${at}.include is empty: list the columns to track, or remove "include" to track all`);
  if (out.primaryKey?.length === 0) problems.push(`${at}.primaryKey is empty: list the columns that identify a row`);
  for (const c of out.include ?? []) {
    if (out.exclude.includes(c)) problems.push(`${at}: column "${c}" is both included and excluded; remove it from one list`);
  }
  for (const c of out.mask) {
    if (out.exclude.includes(c)) problems.push(`${at}: column "${c}" is both masked and excluded; an excluded column is never stored, remove it from "mask"`);
  }
  if (value.mapping !== undefined) {
    if (!isPlainObject(value.mapping) || Object.values(value.mapping).some((v) => typeof v !== 'string')) {
      problems.push(`${at}.mapping must map column names to display names, e.g. { "email": "E-mail address" }`);
    } else {
      out.mapping = Object.fromEntries(Object.entries(value.mapping).map(([c, v]) => [parseColumnName(c), v as string]));
    }
  }
  if (value.objectRepr !== undefined) {
    if (typeof value.objectRepr !== 'string' || value.objectRepr === '') problems.push(`${at}.objectRepr must be a column name`);
    else out.objectRepr = parseColumnName(value.objectRepr);
  }
  if (value.snapshot !== undefined) {
    if (typeof value.snapshot !== 'boolean') problems.push(`${at}.snapshot must be true or false`);
    else out.snapshot = value.snapshot;
  }
  if (value.mode !== undefined) {
    if (!MODES.includes(value.mode as CaptureMode)) problems.push(`${at}.mode must be "statement" or "row"`);
    else out.mode = value.mode as CaptureMode;
  }
  out.unattributed = policy(value.unattributed, `${at}.unattributed`, problems);
  if (value.logTable !== undefined) {
    const problem = logTableProblem(value.logTable);
    if (problem) problems.push(`${at}.logTable ${problem}`);
    else out.logTable = value.logTable as string;
  }
  if (value.actions !== undefined) {
    const actions = value.actions;
    if (!Array.isArray(actions) || actions.length === 0 || actions.some((a) => !ALL_ACTIONS.includes(a as CapturedAction))) {
      problems.push(`${at}.actions must be a non-empty list drawn from ${ALL_ACTIONS.join(', ')}`);
    } else {
      // Canonical order keeps generated SQL (and its hash) independent of how the list was written.
      out.actions = ALL_ACTIONS.filter((a) => actions.includes(a));
    }
  }
  return out;
}

export function invalid(source: string, problems: string[]): AuditLogError {
  const list = problems.map((p) => `  - ${p}`).join('\n');
  return new AuditLogError('CONFIG_INVALID', `${source} is invalid:\n${list}`, { problems });
}

// ---------------------------------------------------------------------------------------------
// Partitioning and per-table logs (see src/maintain and docs/partitioning.md)

export type PartitionInterval = 'day' | 'week' | 'month';
export const INTERVALS: readonly PartitionInterval[] = ['day', 'week', 'month'];

export interface NormalizedPartitioning {
  interval: PartitionInterval;
  /** Entries older than this are dropped by `maintain`, a whole partition at a time. */
  retention?: { amount: number; unit: 'day' | 'week' | 'month' | 'year'; text: string };
  /** Partitions kept ready ahead of now. */
  premake: number;
}

const PARTITIONING_KEYS = ['interval', 'retention', 'premake'];
/** Default partitions ahead: about a week of days, a month of weeks, a quarter of months. */
export const DEFAULT_PREMAKE: Record<PartitionInterval, number> = { day: 7, week: 4, month: 3 };

/** "13 months", "90 days", "2 years", "1 week" → its parts; undefined when unreadable. */
export function parseRetention(text: string): NormalizedPartitioning['retention'] | undefined {
  const m = /^\s*(\d{1,4})\s*(day|week|month|year)s?\s*$/i.exec(text);
  if (!m || Number(m[1]) < 1) return undefined;
  return { amount: Number(m[1]), unit: m[2]!.toLowerCase() as 'day' | 'week' | 'month' | 'year', text: text.trim() };
}

function validatePartitioning(raw: unknown, problems: string[]): NormalizedPartitioning | undefined {
  if (raw === undefined) return undefined;
  if (!isPlainObject(raw)) {
    problems.push('"partitioning" must be an object like { "interval": "month", "retention": "13 months" }');
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (!PARTITIONING_KEYS.includes(key)) problems.push(`partitioning: unknown key "${key}"; expected one of ${PARTITIONING_KEYS.join(', ')}`);
  }
  if (!INTERVALS.includes(raw.interval as PartitionInterval)) {
    problems.push(`partitioning.interval must be "day", "week" or "month" (got ${JSON.stringify(raw.interval)})`);
    return undefined;
  }
  const interval = raw.interval as PartitionInterval;
  const out: NormalizedPartitioning = { interval, premake: DEFAULT_PREMAKE[interval] };
  if (raw.retention !== undefined) {
    const retention = typeof raw.retention === 'string' ? parseRetention(raw.retention) : undefined;
    if (!retention) problems.push(`partitioning.retention must read like "13 months", "90 days", "52 weeks" or "2 years" (got ${JSON.stringify(raw.retention)})`);
    else out.retention = retention;
  }
  if (raw.premake !== undefined) {
    if (!Number.isInteger(raw.premake) || (raw.premake as number) < 1 || (raw.premake as number) > 366) {
      problems.push('partitioning.premake must be a whole number of partitions from 1 to 366 (how many to create ahead of now)');
    } else out.premake = raw.premake as number;
  }
  return out;
}

/** Log table names: an identifier of our own making, short enough for "_p20260101" suffixes. */
function logTableProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || !/^[a-z_][a-z0-9_]*$/.test(value)) {
    return `must be a lower-case table name of letters, digits and "_" (e.g. "users_log"); got ${JSON.stringify(value)}`;
  }
  if (value.length > 48) return `"${value}" is longer than 48 characters (partitions add a suffix of up to 15): shorten it`;
  if (/^(log_entry|tracked_table|subscriber_cursor|security_setting|seal_batch|entry_seal|dropped_range|migrations)(_|$)/.test(value)) {
    return `"${value}" clashes with a table of the audit schema: choose another name, e.g. "users_log"`;
  }
  return undefined;
}
