// Turns a plain auditlog.log_entry into the partitioned log the config asks for, in the
// install transaction, keeping every entry as it is (same id, same values, same seal):
//
//   time partitioning  the old table is renamed log_entry_legacy and attached, unchanged, as the
//                      partition FROM (MINVALUE) TO (bound) of a new log_entry partitioned by
//                      range of ts. A CHECK (ts < bound), added and validated beforehand in short
//                      transactions of their own (prepareConversion), proves the partition
//                      constraint, so the attach does not scan the log while writers wait.
//   per-table logs     log_entry becomes list-partitioned on (table_schema, table_name): each
//                      log table is a partition, the old log (plain or by time) the DEFAULT
//                      partition log_entry_shared. That table's entries are moved into its log.
//
// Readers keep reading log_entry and writers keep inserting into it (tuple routing), so no
// other module changes. A PRIMARY KEY on a partitioned table must contain the partition key:
// instead every partition has its own PRIMARY KEY (id); ids stay unique as the identity
// sequence (GENERATED ALWAYS) hands them out, and carries on where the old one stood.
import type { ClientBase } from 'pg';
import type { NormalizedConfig, PartitionInterval } from '../config/validate';
import { AuditLogError } from '../errors';
import { dollarQuote } from '../generate';
import { displayName, quoteIdent, quoteLiteral, type QualifiedName } from '../ident';
import {
  DEFAULT_SUFFIX, LEGACY_SUFFIX, ROOT, ROUTE_KEY, SHARED, addPeriods, childrenOf, periodStart, qualifiedLog, readLogTree,
  routesBound, tsLiteral, type LogTree,
} from './tree';

/** The CHECK that lets the legacy partition attach without a scan; its comment holds the bound. */
export const BOUND_CONSTRAINT = 'log_entry_partition_bound';

export interface WantedLayout {
  interval?: PartitionInterval;
  /** Log table name → the tables routed to it. */
  logTables: Map<string, QualifiedName[]>;
}

export function wantedLayout(config: NormalizedConfig): WantedLayout {
  const logTables = new Map<string, QualifiedName[]>();
  for (const t of config.tables) {
    if (t.logTable !== undefined) logTables.set(t.logTable, [...(logTables.get(t.logTable) ?? []), t.table]);
  }
  return { interval: config.partitioning?.interval, logTables };
}

/** What the root looks like, read once before any statement runs. */
interface RootFacts {
  /** Non-unique indexes of log_entry: name and the part of the definition from " USING ". */
  indexes: { name: string; using: string }[];
  /** SQL-body functions bound to log_entry's row type (entry_digest): recreated for the new table. */
  functions: { signature: string; definition: string; comment: string | null }[];
  comment: string | null;
}

async function rootFacts(client: ClientBase, schema: string): Promise<RootFacts> {
  const root = qualifiedLog(schema, ROOT);
  const views = await client.query<{ name: string }>(
    `SELECT DISTINCT v.oid::pg_catalog.regclass::text AS name
     FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
     WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.refobjid = $1::pg_catalog.regclass AND v.oid <> d.refobjid`,
    [root]);
  if (views.rows.length > 0) {
    throw new AuditLogError('INSTALL_FAILED', `cannot partition ${root}: view(s) ${views.rows.map((r) => r.name).join(', ')} depend on it. ` +
      'Drop them, run auditlog install, then create them again (they will read every partition)');
  }
  const { rows: indexes } = await client.query<{ name: string; def: string }>(
    `SELECT c.relname AS name, pg_catalog.pg_get_indexdef(i.indexrelid) AS def
     FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = $1::pg_catalog.regclass AND NOT i.indisunique ORDER BY c.relname`, [root]);
  const { rows: functions } = await client.query<{ signature: string; definition: string; comment: string | null }>(
    `SELECT DISTINCT p.oid::pg_catalog.regprocedure::text AS signature, pg_catalog.pg_get_functiondef(p.oid) AS definition,
            pg_catalog.obj_description(p.oid, 'pg_proc') AS comment
     FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
     WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND ((d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = $1::pg_catalog.regclass)
         OR (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass
             AND d.refobjid = (SELECT reltype FROM pg_catalog.pg_class WHERE oid = $1::pg_catalog.regclass)))`, [root]);
  const { rows: [c] } = await client.query<{ comment: string | null }>(
    `SELECT pg_catalog.obj_description($1::pg_catalog.regclass, 'pg_class') AS comment`, [root]);
  return {
    indexes: indexes.map((i) => ({ name: i.name, using: i.def.slice(i.def.indexOf(' USING ')) })),
    functions, comment: c?.comment ?? null,
  };
}

/**
 * Statements that rename the root to `renamed` and put a new, empty log_entry partitioned by
 * `partitionBy` in its place, with the same columns, defaults, indexes and identity position.
 * The caller attaches `renamed` to it.
 */
function swapRoot(schema: string, facts: RootFacts, renamed: string, partitionBy: string): string[] {
  const root = qualifiedLog(schema, ROOT);
  const old = qualifiedLog(schema, renamed);
  const rootText = quoteLiteral(root);
  const out = [
    `-- log_entry becomes ${partitionBy}; the table so far is kept, entries untouched, as ${quoteIdent(renamed)}`,
    `LOCK TABLE ${root} IN ACCESS EXCLUSIVE MODE;`,
    // The identity's position, carried over: ids continue, never repeat.
    `CREATE TEMP TABLE pg_auditlog_identity ON COMMIT DROP AS
  SELECT pg_catalog.pg_sequence_last_value(pg_catalog.pg_get_serial_sequence(${rootText}, 'id')::pg_catalog.regclass) AS last_value;`,
    // Bound to the old row type; recreated below for the new table.
    ...facts.functions.map((f) => `DROP FUNCTION ${f.signature};`),
    `ALTER TABLE ${root} RENAME TO ${quoteIdent(renamed)};`,
    ...facts.indexes.map((i) => `ALTER INDEX ${qualifiedLog(schema, i.name)} RENAME TO ${quoteIdent(renamedIndex(i.name, renamed))};`),
    `ALTER TABLE ${old} ALTER COLUMN id DROP IDENTITY;`,
    `CREATE TABLE ${root} (LIKE ${old} INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)
  PARTITION BY ${partitionBy};`,
    `ALTER TABLE ${root} ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;`,
    `SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(${rootText}, 'id'), last_value) FROM pg_auditlog_identity WHERE last_value IS NOT NULL;`,
    'DROP TABLE pg_auditlog_identity;',
    ...(facts.comment !== null ? [`COMMENT ON TABLE ${root} IS ${quoteLiteral(facts.comment)};`] : []),
    ...facts.indexes.map((i) => `CREATE INDEX ${quoteIdent(i.name)} ON ${root}${i.using};`),
    ...facts.functions.flatMap((f) => [
      `${f.definition.trimEnd()};`,
      ...(f.comment !== null ? [`COMMENT ON FUNCTION ${f.signature} IS ${quoteLiteral(f.comment)};`] : []),
    ]),
  ];
  return out;
}

/** log_entry_object_idx → log_entry_legacy_object_idx: index names are unique per schema. */
function renamedIndex(index: string, table: string): string {
  return index.startsWith(`${ROOT}_`) ? `${table}${index.slice(ROOT.length)}` : `${table}_${index}`;
}

/** A leaf partition's own primary key (the parent cannot have one on id alone). */
function primaryKey(schema: string, table: string): string {
  return `ALTER TABLE ${qualifiedLog(schema, table)} ADD PRIMARY KEY (id);`;
}

/** A new table of log_entry's shape; time-partitioned (with its default) when an interval is set. */
function newLogTable(schema: string, name: string, interval: PartitionInterval | undefined): string[] {
  const table = qualifiedLog(schema, name);
  const like = `CREATE TABLE ${table} (LIKE ${qualifiedLog(schema, ROOT)} INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)`;
  if (!interval) return [`${like};`, primaryKey(schema, name)];
  return [
    `${like}\n  PARTITION BY RANGE (ts);`,
    `CREATE TABLE ${qualifiedLog(schema, name + DEFAULT_SUFFIX)} PARTITION OF ${table} DEFAULT;`,
    primaryKey(schema, name + DEFAULT_SUFFIX),
  ];
}

/** Moves the entries of `routes` out of `from` into `to`, ids and values unchanged. */
function moveEntries(schema: string, from: string, to: string, routes: QualifiedName[]): string {
  const pairs = routes.map((r) => `(${quoteLiteral(r.schema)}, ${quoteLiteral(r.name)})`).join(', ');
  return `WITH moved AS (DELETE FROM ${qualifiedLog(schema, from)} WHERE (table_schema, table_name) IN (${pairs}) RETURNING *)
  INSERT INTO ${qualifiedLog(schema, to)} SELECT * FROM moved;`;
}

async function boundConstraint(client: ClientBase, schema: string): Promise<{ bound: Date; validated: boolean } | undefined> {
  const { rows: [c] } = await client.query<{ comment: string | null; validated: boolean }>(
    `SELECT pg_catalog.obj_description(c.oid, 'pg_constraint') AS comment, c.convalidated AS validated
     FROM pg_catalog.pg_constraint c WHERE c.conrelid = pg_catalog.to_regclass($1) AND c.conname = $2`,
    [qualifiedLog(schema, ROOT), BOUND_CONSTRAINT]);
  if (!c) return undefined;
  const bound = new Date(c.comment ?? '');
  return Number.isNaN(bound.getTime()) ? undefined : { bound, validated: c.validated };
}

/** The first time partition starts here: two periods ahead, so no write in flight can reach it. */
export function legacyBound(now: Date, interval: PartitionInterval): Date {
  return addPeriods(periodStart(now, interval), interval, 2);
}

/**
 * Before the install transaction, for a plain log that is to be partitioned by time: adds the
 * CHECK (ts < bound) NOT VALID (a brief exclusive lock, no scan) and validates it (a scan
 * that writers do not wait for), each in its own short transaction. Returns what it did.
 */
export async function prepareConversion(client: ClientBase, config: NormalizedConfig, now: Date): Promise<string[]> {
  const interval = config.partitioning?.interval;
  if (!interval) return [];
  const tree = await readLogTree(client, config.schema);
  if (tree.get(ROOT)?.kind !== 'plain') return [];
  const root = qualifiedLog(config.schema, ROOT);
  const done: string[] = [];
  let existing = await boundConstraint(client, config.schema);
  if (!existing) {
    const bound = legacyBound(now, interval);
    await client.query('BEGIN');
    try {
      await client.query(`ALTER TABLE ${root} ADD CONSTRAINT ${quoteIdent(BOUND_CONSTRAINT)} CHECK (ts < ${tsLiteral(bound)}) NOT VALID`);
      await client.query(`COMMENT ON CONSTRAINT ${quoteIdent(BOUND_CONSTRAINT)} ON ${root} IS ${quoteLiteral(bound.toISOString())}`);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    existing = { bound, validated: false };
    done.push(`added CHECK (ts < ${bound.toISOString()}) to ${root}`);
  }
  if (!existing.validated) {
    await client.query(`ALTER TABLE ${root} VALIDATE CONSTRAINT ${quoteIdent(BOUND_CONSTRAINT)}`);
    done.push(`validated ${BOUND_CONSTRAINT} (one scan of the log; writers kept writing)`);
  }
  return done;
}

/** Removes a bound CHECK left by a conversion that never finished (it would refuse writes past its bound). */
export async function dropStaleBound(client: ClientBase, schema: string): Promise<boolean> {
  const tree = await readLogTree(client, schema);
  if (tree.get(ROOT)?.kind !== 'plain' || !(await boundConstraint(client, schema))) return false;
  await client.query(`ALTER TABLE ${qualifiedLog(schema, ROOT)} DROP CONSTRAINT IF EXISTS ${quoteIdent(BOUND_CONSTRAINT)}`);
  return true;
}

export interface ConversionPlan {
  statements: string[];
  notes: string[];
}

/**
 * The statements that bring the log to the layout the config asks for (none when it already
 * has it). Reads the catalog only; the installer runs them in its transaction.
 */
export async function planConversion(client: ClientBase, config: NormalizedConfig, now: Date): Promise<ConversionPlan> {
  const schema = config.schema;
  const want = wantedLayout(config);
  const tree = await readLogTree(client, schema);
  const notes: string[] = [];
  const statements: string[] = [];
  const root = tree.get(ROOT);
  if (!root) {
    if (want.interval || want.logTables.size > 0) notes.push('after the migrations create it, log_entry is partitioned as configured (run --dry-run again once the schema exists to see how)');
    return { statements, notes };
  }
  if (root.kind !== 'plain' && !want.interval && want.logTables.size === 0) {
    notes.push(`${qualifiedLog(schema, ROOT)} stays partitioned: install never merges partitions back (see docs/partitioning.md)`);
  }
  if (root.kind === 'plain' && !want.interval && want.logTables.size === 0) return { statements, notes };
  return planFrom(tree, await rootFacts(client, schema), schema, want, now, notes, await boundConstraint(client, schema));

  async function planFrom(
    t: LogTree, f: RootFacts, s: string, w: WantedLayout, at: Date, n: string[], bound?: { bound: Date },
  ): Promise<ConversionPlan> {
    let kind = t.get(ROOT)!.kind;
    if (w.interval && kind === 'plain') {
      const b = bound?.bound ?? legacyBound(at, w.interval);
      const legacy = ROOT + LEGACY_SUFFIX;
      statements.push(
        ...swapRoot(s, f, legacy, 'RANGE (ts)'),
        // Decided under the lock: an empty log (a fresh install) needs no legacy partition,
        // so partitions of past periods can be made for entries imported later.
        `DO ${dollarQuote(`BEGIN
  IF EXISTS (SELECT 1 FROM ${qualifiedLog(s, legacy)}) THEN
    ALTER TABLE ${qualifiedLog(s, ROOT)} ATTACH PARTITION ${qualifiedLog(s, legacy)} FOR VALUES FROM (MINVALUE) TO (${tsLiteral(b)});
    ALTER TABLE ${qualifiedLog(s, legacy)} DROP CONSTRAINT IF EXISTS ${quoteIdent(BOUND_CONSTRAINT)};
  ELSE
    DROP TABLE ${qualifiedLog(s, legacy)};
  END IF;
END
`, 'legacy')};`,
        `CREATE TABLE ${qualifiedLog(s, ROOT + DEFAULT_SUFFIX)} PARTITION OF ${qualifiedLog(s, ROOT)} DEFAULT;`,
        primaryKey(s, ROOT + DEFAULT_SUFFIX),
      );
      kind = 'range';
    }
    if (w.logTables.size > 0 && kind !== 'list') {
      statements.push(...swapRoot(s, f, SHARED, `LIST ((${ROUTE_KEY}))`));
      for (const [name, routes] of w.logTables) {
        statements.push(
          `-- ${quoteIdent(name)}: the log of ${routes.map(displayName).join(', ')}`,
          ...newLogTable(s, name, w.interval),
          moveEntries(s, SHARED, name, routes),
          `ALTER TABLE ${qualifiedLog(s, ROOT)} ATTACH PARTITION ${qualifiedLog(s, name)} ${routesBound(routes)};`,
        );
      }
      statements.push(`ALTER TABLE ${qualifiedLog(s, ROOT)} ATTACH PARTITION ${qualifiedLog(s, SHARED)} DEFAULT;`);
    } else if (kind === 'list') {
      planLogTableChanges(t, s, w, n);
    }
    return { statements, notes: n };
  }

  function planLogTableChanges(t: LogTree, s: string, w: WantedLayout, n: string[]): void {
    const children = childrenOf(t, ROOT);
    const shared = children.find((c) => c.isDefault);
    if (!shared) throw new AuditLogError('INSTALL_FAILED', `${qualifiedLog(s, ROOT)} is partitioned by table but has no default partition: attach the shared log as DEFAULT`);
    const routed = new Map<string, string>();
    for (const c of children) for (const r of c.routes) routed.set(displayName(r), c.name);
    for (const [name, routes] of w.logTables) {
      const existing = t.get(name);
      for (const r of routes) {
        const owner = routed.get(displayName(r));
        if (owner !== undefined && owner !== name) {
          throw new AuditLogError('CONFIG_INVALID', `tables["${displayName(r)}"].logTable is "${name}", but its entries already go to ${quoteIdent(owner)}: ` +
            'moving a table between log tables is not supported; keep the logTable it has');
        }
      }
      if (existing && existing.parent !== ROOT) {
        throw new AuditLogError('CONFIG_INVALID', `logTable "${name}": ${qualifiedLog(s, name)} already exists and is not a log table; choose another name`);
      }
      const added = routes.filter((r) => !routed.has(displayName(r)));
      if (!existing) {
        statements.push(
          `-- ${quoteIdent(name)}: the log of ${routes.map(displayName).join(', ')}`,
          ...newLogTable(s, name, w.interval),
          moveEntries(s, shared.name, name, routes),
          `ALTER TABLE ${qualifiedLog(s, ROOT)} ATTACH PARTITION ${qualifiedLog(s, name)} ${routesBound(routes)};`,
        );
      } else if (added.length > 0) {
        // A partition's bound cannot change in place: detach, move the new tables' entries, attach with both.
        statements.push(
          `-- ${quoteIdent(name)}: now also the log of ${added.map(displayName).join(', ')}`,
          `ALTER TABLE ${qualifiedLog(s, ROOT)} DETACH PARTITION ${qualifiedLog(s, name)};`,
          moveEntries(s, shared.name, name, added),
          `ALTER TABLE ${qualifiedLog(s, ROOT)} ATTACH PARTITION ${qualifiedLog(s, name)} ${routesBound([...existing.routes, ...added])};`,
        );
      }
      if (existing && w.interval && existing.kind === 'plain') {
        n.push(`${qualifiedLog(s, name)} was created before "partitioning" was set and stays one table (not partitioned by time)`);
      }
    }
    for (const c of children) {
      if (c.isDefault || w.logTables.has(c.name)) continue;
      n.push(`${qualifiedLog(s, c.name)} is no longer named by any logTable: its entries and new ones of ${c.routes.map(displayName).join(', ')} stay there`);
    }
    if (w.interval && shared.kind === 'plain') {
      n.push(`the shared log ${qualifiedLog(s, shared.name)} was created before "partitioning" was set and stays one table (not partitioned by time)`);
    }
  }
}
