// Checks a normalised config against the live catalog and turns it into table plans, the
// input of the SQL generator. Every problem is collected, so one run shows all of them.
import type { ClientBase } from 'pg';
import {
  findSimilarTables, readRelationKinds, readTables, readTablesInSchemas, tableKey, type CatalogTable, type CompareAs, type KeyForm,
} from '../catalog';
import { displayName, quoteIdent, type QualifiedName } from '../ident';
import type { CaptureMode, CapturedAction, UnattributedPolicy } from '../interfaces';
import { defaultTableConfig, invalid, type NormalizedConfig, type NormalizedTableConfig } from './validate';

export interface ColumnPlan {
  name: string;
  masked: boolean;
  /** See CompareAs in src/catalog. */
  compareAs: CompareAs;
  /** Serialised through the type's output function (see CatalogColumn.textOutput). */
  textOutput?: boolean;
}

/** Everything the generator needs for one table. */
export interface TablePlan {
  table: QualifiedName;
  /** Tracked columns, in table (attnum) order. */
  columns: ColumnPlan[];
  primaryKey: string[];
  /** How each primary key part is rendered in object_pk, in primaryKey order (see KeyForm). */
  keyForms?: KeyForm[];
  objectRepr?: string;
  /** How the objectRepr column is rendered (see KeyForm). */
  reprForm?: KeyForm;
  snapshot: boolean;
  actions: CapturedAction[];
  mode: CaptureMode;
  /** Display names, recorded for readers of the log. */
  mapping: Record<string, string>;
  /** Every column of the table when planned; the DDL watch compares against it. */
  allColumns: string[];
  /**
   * A partitioned table: capture is placed on it and on each of its partitions (listed here,
   * any depth, when planned), and writes aimed at any of them are logged under this table.
   */
  partitioned?: boolean;
  partitions?: QualifiedName[];
  /** Writes without an actor: 'allow' generates nothing. */
  unattributed?: UnattributedPolicy;
}

export interface ResolveOptions {
  /**
   * Hears of each configured table that does not exist (e.g. dropped) instead of counting it
   * as a config problem: `status` reports such a table as missing.
   */
  onMissingTable?: (table: QualifiedName) => void;
}

export async function resolveConfig(
  client: ClientBase, config: NormalizedConfig, source = 'config', options: ResolveOptions = {},
): Promise<TablePlan[]> {
  const problems: string[] = [...(config.deferredProblems ?? [])];
  const wanted = new Map<string, NormalizedTableConfig>();
  const fromIncludeAll = new Set<string>();

  if (config.includeAll) {
    const except = new Set(config.includeAll.except.map(tableKey));
    for (const t of await readTablesInSchemas(client, config.includeAll.schemas)) {
      if (t.schema === config.schema || except.has(tableKey(t))) continue;
      wanted.set(tableKey(t), defaultTableConfig(t));
      fromIncludeAll.add(tableKey(t));
    }
  }
  for (const t of config.tables) {
    if (t.table.schema === config.schema) {
      problems.push(`tables["${t.key}"]: the audit schema "${config.schema}" cannot audit itself`);
      continue;
    }
    wanted.set(tableKey(t.table), t);
    fromIncludeAll.delete(tableKey(t.table));
  }

  const catalog = await readTables(client, [...wanted.values()].map((t) => t.table));
  const missing = [...wanted.values()].filter((t) => !catalog.has(tableKey(t.table)));
  const kinds = await readRelationKinds(client, missing.map((t) => t.table));
  for (const t of missing) {
    const kind = kinds.get(tableKey(t.table));
    if (kind) {
      problems.push(`tables["${t.key}"]: ${displayName(t.table)} is a ${kind}; only tables can be audited`);
      continue;
    }
    if (options.onMissingTable && !fromIncludeAll.has(tableKey(t.table))) {
      options.onMissingTable(t.table);
      continue;
    }
    const similar = await findSimilarTables(client, t.table);
    const hint = similar.length > 0
      ? `; did you mean ${similar.map((s) => `${quoteIdent(s.schema)}.${quoteIdent(s.name)}`).join(' or ')}? (quote mixed-case names)`
      : '; check the name, or create the table before installing';
    problems.push(`tables["${t.key}"]: table ${displayName(t.table)} does not exist${hint}`);
  }

  const plans: TablePlan[] = [];
  for (const t of wanted.values()) {
    const table = catalog.get(tableKey(t.table));
    if (!table) continue;
    const plan = planTable(table, t, config, fromIncludeAll.has(tableKey(t.table)), problems);
    if (plan) plans.push(plan);
  }
  if (problems.length > 0) throw invalid(source, problems);
  return plans.sort((a, b) => (tableKey(a.table) < tableKey(b.table) ? -1 : 1));
}

function planTable(
  table: CatalogTable, cfg: NormalizedTableConfig, config: NormalizedConfig, viaIncludeAll: boolean, problems: string[],
): TablePlan | undefined {
  const globalExclude = config.excludeFields;
  const at = viaIncludeAll ? `includeAll: table ${displayName(table)}` : `tables["${cfg.key}"]`;
  const names = table.columns.map((c) => c.name);
  const known = (column: string, field: string): boolean => {
    if (names.includes(column)) return true;
    const similar = names.filter((n) => n.toLowerCase() === column.toLowerCase());
    const hint = similar.length > 0 ? `; did you mean "${similar[0]}"?` : `; its columns are ${names.join(', ')}`;
    problems.push(`${at}.${field}: column "${column}" does not exist in ${displayName(table)}${hint}`);
    return false;
  };
  const before = problems.length;
  cfg.include?.forEach((c) => known(c, 'include'));
  cfg.exclude.forEach((c) => known(c, 'exclude'));
  cfg.mask.forEach((c) => known(c, 'mask'));
  Object.keys(cfg.mapping).forEach((c) => known(c, 'mapping'));
  cfg.primaryKey?.forEach((c) => known(c, 'primaryKey'));
  if (cfg.objectRepr !== undefined && known(cfg.objectRepr, 'objectRepr') && cfg.mask.includes(cfg.objectRepr)) {
    problems.push(`${at}.objectRepr: column "${cfg.objectRepr}" is masked; object_repr would store it in clear. Pick another column`);
  }
  // Virtual generated columns (PostgreSQL 18) are computed on read: triggers see them as null
  // and transition tables cannot hold them, so they are never recorded (docs/capture-types.md).
  const virtual = new Set(table.columns.filter((c) => c.virtual).map((c) => c.name));
  for (const [field, named] of [['include', cfg.include ?? []], ['objectRepr', cfg.objectRepr === undefined ? [] : [cfg.objectRepr]]] as const) {
    for (const c of named.filter((n) => virtual.has(n))) {
      problems.push(`${at}.${field}: column "${c}" of ${displayName(table)} is a virtual generated column: it is computed on read, ` +
        'not stored, so it is not recorded. Remove it (its value follows from the recorded columns), or make it STORED');
    }
  }

  const primaryKey = cfg.primaryKey ?? table.primaryKey;
  if (primaryKey.length === 0) {
    problems.push(viaIncludeAll
      ? `${at} has no primary key: add one (ALTER TABLE … ADD PRIMARY KEY), list it in includeAll.except, or add it under "tables" with "primaryKey": [columns that identify a row]`
      : `${at}: ${displayName(table)} has no primary key: add one (ALTER TABLE … ADD PRIMARY KEY), or set "primaryKey": [columns that identify a row]`);
  }
  if (table.isPartition) {
    problems.push(`${at}: ${displayName(table)} is a partition; audit the partitioned table it belongs to, which captures every write to its partitions under its own name`);
  }
  if (problems.length > before) return undefined;

  const formOf = (column: string): KeyForm => table.columns.find((c) => c.name === column)?.keyForm ?? null;
  const include = cfg.include ? new Set(cfg.include) : undefined;
  // A column the table includes by name wins over the global excludeFields.
  const exclude = new Set([...cfg.exclude, ...globalExclude.filter((c) => !include?.has(c))]);
  const columns = table.columns
    .filter((c) => (include ? include.has(c.name) : true) && !exclude.has(c.name) && !c.virtual)
    .map((c) => ({
      name: c.name, masked: cfg.mask.includes(c.name), compareAs: c.compareAs, ...(c.textOutput ? { textOutput: true } : {}),
    }));
  if (columns.length === 0) {
    problems.push(`${at}: every column of ${displayName(table)} is excluded; nothing would be recorded. Track at least one column`);
    return undefined;
  }
  return {
    table: { schema: table.schema, name: table.name },
    columns,
    primaryKey,
    keyForms: primaryKey.map((k) => formOf(k)),
    objectRepr: cfg.objectRepr,
    ...(cfg.objectRepr !== undefined ? { reprForm: formOf(cfg.objectRepr) } : {}),
    snapshot: cfg.snapshot,
    actions: cfg.actions,
    mode: cfg.mode ?? config.mode,
    mapping: cfg.mapping,
    allColumns: names,
    ...(table.kind === 'partitioned table' ? { partitioned: true, partitions: table.partitions } : {}),
    unattributed: cfg.unattributed ?? config.unattributed,
  };
}
