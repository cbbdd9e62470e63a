// install / uninstall / status: make the database match the config, in one transaction,
// serialised between concurrent installers by an advisory lock.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ClientBase } from 'pg';
import { loadMigrationFiles } from 'postgres-migrations';
import { COMMENT_PREFIX, readInstalledTriggers, schemaExists, tableKey, type InstalledTrigger } from '../catalog';
import { castProblems } from '../security/casts';
import { resolveConfig, type TablePlan } from '../config/resolve';
import { DEFAULT_BYPASS_ROLE, validateConfig, type NormalizedConfig } from '../config/validate';
import { dropTableCapture, dropTriggers, generateTable, type GeneratedTable } from '../generate';
import { commentText, displayName, quoteIdent, type QualifiedName } from '../ident';
import type {
  AuditConfig, InstallOptions, InstallResult, StatusReport, TableStatus, UninstallOptions,
} from '../interfaces';
import { inTransaction } from '../db';
import { ddlWatchInstalled, dropDdlWatch, ensureDdlWatch } from './ddl-watch';
import { applyMigrations, MIGRATIONS_DIR, pendingMigrationCount } from './migrations';
import { applySecurity, ensureRoles } from '../security/roles';
import { validateRoleOverrides } from '../security/options';
import { dropStaleBound, planConversion, prepareConversion, BOUND_CONSTRAINT } from '../maintain/convert';
import { ensurePartitions } from '../maintain';
import { analyzeLeaves, ensureLookupStatistics } from '../maintain/statistics';

/** A config as written by the user, or one already validated. */
export type ConfigInput = AuditConfig | NormalizedConfig;

function normalize(config: ConfigInput): NormalizedConfig {
  // A NormalizedConfig is recognisable by its resolved `tables` array.
  return Array.isArray((config as NormalizedConfig).tables) ? (config as NormalizedConfig) : validateConfig(config);
}

/** Serialises installers of the same audit schema; released at commit or rollback. */
async function lockSchema(client: ClientBase, schema: string): Promise<void> {
  await client.query('SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))', [`pg-auditlog install ${schema}`]);
}

interface Orphan {
  table: QualifiedName;
  triggers: string[];
  functionName: string;
}

interface PartitionTriggers {
  table: QualifiedName;
  existing: InstalledTrigger[];
}

interface TablePlanState {
  plan: TablePlan;
  generated: GeneratedTable;
  existing: InstalledTrigger[];
  /** A partitioned table's partitions, with the capture triggers each has now. */
  partitions: PartitionTriggers[];
  state: 'installed' | 'outdated' | 'missing';
  detail?: string;
}

interface Plan {
  config: NormalizedConfig;
  tables: TablePlanState[];
  orphans: Orphan[];
  /** Configured tables that do not exist (only when planning for status). */
  dropped: QualifiedName[];
}

/** Comment the DDL watch leaves on a table's capture after swapping in the generic fallback. */
const FALLBACK = 'fallback';

function compare(generated: GeneratedTable, existing: InstalledTrigger[], partitions: PartitionTriggers[]): Pick<TablePlanState, 'state' | 'detail'> {
  if (existing.length === 0) return { state: 'missing', detail: 'no capture trigger: run auditlog install' };
  const own = compareTriggers(generated, existing);
  if (own.state !== 'installed') return own;
  const uncaptured = partitions.filter((p) => p.existing.length === 0).map((p) => displayName(p.table));
  if (uncaptured.length > 0) {
    return {
      state: 'outdated',
      detail: `partition ${uncaptured.join(', ')} has no capture: writes aimed at it are not recorded (created or attached after install, without the DDL watch): run auditlog install`,
    };
  }
  for (const p of partitions) {
    const part = compareTriggers(generated, p.existing);
    if (part.state !== 'installed') return { state: 'outdated', detail: `partition ${displayName(p.table)}: ${part.detail}` };
  }
  return { state: 'installed' };
}

function compareTriggers(generated: GeneratedTable, existing: InstalledTrigger[]): Pick<TablePlanState, 'state' | 'detail'> {
  const disabled = existing.filter((t) => !t.enabled);
  if (existing.some((t) => t.hash === FALLBACK)) {
    return { state: 'outdated', detail: 'columns changed by ALTER TABLE: capture runs the generic fallback (slower; new columns recorded masked): run auditlog install' };
  }
  if (disabled.length > 0) {
    return { state: 'outdated', detail: `trigger ${disabled.map((t) => t.trigger).join(', ')} is disabled: run auditlog install to re-enable` };
  }
  const names = existing.map((t) => t.trigger).sort().join(',');
  if (names !== [...generated.triggers].sort().join(',') || existing.some((t) => t.hash !== generated.hash)) {
    return { state: 'outdated', detail: 'installed capture differs from the config and current columns: run auditlog install' };
  }
  return { state: 'installed' };
}

async function plan(client: ClientBase, config: NormalizedConfig, forStatus = false): Promise<Plan> {
  const dropped: QualifiedName[] = [];
  const tablePlans = await resolveConfig(client, config, 'config', forStatus ? { onMissingTable: (t) => dropped.push(t) } : {});
  const installed = await readInstalledTriggers(client, config.schema);
  const byTable = new Map<string, InstalledTrigger[]>();
  for (const t of installed) byTable.set(tableKey(t), [...(byTable.get(tableKey(t)) ?? []), t]);

  const take = (t: QualifiedName) => {
    const found = byTable.get(tableKey(t)) ?? [];
    byTable.delete(tableKey(t));
    return found;
  };
  const tables = tablePlans.map((p) => {
    const generated = generateTable(config.schema, p);
    const existing = take(p.table);
    const partitions = (p.partitions ?? []).map((table) => ({ table, existing: take(table) }));
    return { plan: p, generated, existing, partitions, ...compare(generated, existing, partitions) };
  });
  const orphans: Orphan[] = [...byTable.values()].map((triggers) => ({
    table: { schema: triggers[0]!.schema, name: triggers[0]!.name },
    triggers: triggers.map((t) => t.trigger),
    functionName: triggers[0]!.functionName,
  }));
  // Tracked tables with no trigger left and not in the plan: dropped (DROP TABLE takes the
  // triggers with it) or their triggers removed by hand. Their function and tracking row remain.
  const planned = new Set([...tables.map((t) => tableKey(t.plan.table)), ...orphans.map((o) => tableKey(o.table)), ...dropped.map(tableKey)]);
  if (await schemaExists(client, config.schema)) {
    const { rows } = await client.query<{ table_schema: string; table_name: string; function_name: string }>(
      `SELECT table_schema, table_name, function_name FROM ${quoteIdent(config.schema)}.tracked_table ORDER BY 1, 2`);
    for (const r of rows) {
      const table = { schema: r.table_schema, name: r.table_name };
      if (!planned.has(tableKey(table))) orphans.push({ table, triggers: [], functionName: r.function_name });
    }
  }
  return { config, tables, orphans, dropped };
}

/**
 * Removes a table's current capture (on it and on its partitions) before it is recreated. On
 * partitions every capture trigger name is dropped (IF EXISTS): the DDL watch may have added
 * triggers to a new partition since the plan was read (the migrations' DDL fires it).
 */
function dropExisting(schema: string, t: TablePlanState): string {
  const names = [...new Set([...t.generated.triggers, ...t.existing.map((e) => e.trigger), ...t.partitions.flatMap((p) => p.existing.map((e) => e.trigger))])].sort();
  const partitions = t.partitions.map((p) => dropTriggers(p.table, names)).join('');
  const first = t.existing[0] ?? t.partitions.find((p) => p.existing.length > 0)?.existing[0];
  if (first === undefined) return partitions;
  return partitions + dropTableCapture(schema, t.generated.table, t.existing.map((e) => e.trigger), first.functionName);
}

/**
 * Removes capture from a table no longer in the config. A detached partition still calls its
 * former table's function: only its triggers go when that table is still audited.
 */
function dropOrphan(schema: string, p: Plan, o: Orphan): string {
  const inUse = p.tables.some((t) => t.generated.functionName === o.functionName
    || t.existing.some((e) => e.functionName === o.functionName));
  return inUse ? dropTriggers(o.table, o.triggers) : dropTableCapture(schema, o.table, o.triggers, o.functionName);
}

/** Remembers what was installed: the resolved plan, read by the DDL fallback and by readers of the log. */
async function record(client: ClientBase, schema: string, t: TablePlanState): Promise<void> {
  await client.query(
    `INSERT INTO ${quoteIdent(schema)}.tracked_table (table_schema, table_name, config, function_name, definition_hash, table_oid)
     VALUES ($1::text, $2::text, $3, $4, $5,
             (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1::text AND c.relname = $2::text))
     ON CONFLICT (table_schema, table_name) DO UPDATE
       SET config = EXCLUDED.config, function_name = EXCLUDED.function_name, table_oid = EXCLUDED.table_oid,
           definition_hash = EXCLUDED.definition_hash, installed_at = now(), installed_by = current_user`,
    [t.plan.table.schema, t.plan.table.name, JSON.stringify(t.plan), t.generated.functionName, t.generated.hash],
  );
}

/**
 * Applies pending audit schema migrations and creates or replaces the capture of every table
 * in the config, in one transaction. Tables already up to date are not touched, so running it
 * again is a no-op. Throws CONFIG_INVALID (nothing written) when the config does not match
 * the database.
 */
export async function install(client: ClientBase, configInput: ConfigInput, options: InstallOptions = {}): Promise<InstallResult> {
  const config = normalize(configInput);
  const log = options.log ?? (() => undefined);
  // `roles` is absent from a NormalizedConfig built by hand (older callers).
  const roles = { ...(config.roles ?? { appReadsLog: true, bypass: DEFAULT_BYPASS_ROLE }), ...validateRoleOverrides(options.roles) };
  // Problems found before connecting are reported with the catalog's, before anything is done.
  if (config.deferredProblems?.length) await resolveConfig(client, config);
  await ensureRoles(client, roles);
  const { rows: [clock] } = await client.query<{ now: Date }>('SELECT now() AS now');
  const now = clock!.now;
  // Converting a big plain log to time partitions: its one scan runs here, writers unblocked.
  try {
    for (const line of await prepareConversion(client, config, now)) log(line);
  } catch (err) {
    await dropStaleBound(client, config.schema).catch(() => undefined);
    throw err;
  }
  let toAnalyze: string[] = [];
  const done = await inTransaction(client, async () => {
    await lockSchema(client, config.schema);
    const p = await plan(client, config);
    const migrationsApplied = await applyMigrations(client, config.schema);
    for (const m of migrationsApplied) log(`applied migration ${m}`);
    if (!(await ensureDdlWatch(client, config.schema))) {
      log('not a superuser: the DDL watch is not installed, so after DROP or RENAME COLUMN on an audited table, ' +
        'writes to it fail until you run auditlog install again');
    }
    const conversion = await planConversion(client, config, now);
    for (const sql of conversion.statements) await client.query(sql);
    if (conversion.statements.length > 0) log(`partitioned ${quoteIdent(config.schema)}.log_entry as configured (every entry kept)`);
    for (const note of conversion.notes) log(`note: ${note}`);
    if (!config.partitioning && await dropStaleBound(client, config.schema)) log(`removed ${BOUND_CONSTRAINT} left by an unfinished conversion`);
    if (config.partitioning) await ensurePartitions(client, config.schema, config.partitioning, now, log);
    toAnalyze = await ensureLookupStatistics(client, config.schema);

    const result: InstallResult = { migrationsApplied, installed: [], unchanged: [], pruned: [] };
    for (const t of p.tables) {
      const name = displayName(t.generated.table);
      if (t.state === 'installed') {
        result.unchanged.push(name);
        continue;
      }
      await client.query(dropExisting(config.schema, t));
      await client.query(t.generated.sql);
      await record(client, config.schema, t);
      result.installed.push(name);
      log(`${t.state === 'missing' ? 'installed' : 'updated'} capture on ${name}`);
    }
    for (const o of p.orphans) {
      const name = displayName(o.table);
      if (!options.prune) {
        log(`${name} is captured but no longer in the config; left as is (use --prune to remove)`);
        continue;
      }
      await client.query(dropOrphan(config.schema, p, o));
      await client.query(`DELETE FROM ${quoteIdent(config.schema)}.tracked_table WHERE table_schema = $1 AND table_name = $2`, [o.table.schema, o.table.name]);
      result.pruned.push(name);
      log(`removed capture from ${name} (no longer in the config)`);
    }
    await applySecurity(client, config, roles, p.tables.map((t) => t.generated.table), log);
    return result;
  }).catch(async (err: unknown) => {
    await dropStaleBound(client, config.schema).catch(() => undefined);
    throw err;
  });
  await analyzeLeaves(client, config.schema, toAnalyze, log);
  return done;
}

/** The SQL `install` would run, for review; reads the catalog, writes nothing. */
export async function renderInstall(client: ClientBase, configInput: ConfigInput, options: Pick<InstallOptions, 'prune'> = {}): Promise<string> {
  const config = normalize(configInput);
  const p = await plan(client, config);
  const schema = quoteIdent(config.schema);
  const out = [
    `-- pg-auditlog install plan for audit schema ${schema}`,
    '-- Review only: apply it with `auditlog install`, which also records the migrations it runs.',
    'BEGIN;',
  ];
  const pending = await pendingMigrationCount(client, config.schema);
  if (pending > 0) {
    const files = (await loadMigrationFiles(MIGRATIONS_DIR)).filter((m) => m.id > 0).slice(-pending);
    out.push(`CREATE SCHEMA IF NOT EXISTS ${schema};`, `SET LOCAL search_path TO ${schema}, pg_catalog, pg_temp;`);
    for (const f of files) {
      out.push('', `-- migration ${f.fileName}`, readFileSync(path.join(MIGRATIONS_DIR, f.fileName), 'utf8').trimEnd());
    }
    out.push('RESET search_path;');
  } else {
    out.push('-- audit schema: up to date');
  }
  const { rows: [clock] } = await client.query<{ now: Date }>('SELECT now() AS now');
  const conversion = await planConversion(client, config, clock!.now);
  if (conversion.statements.length > 0) {
    out.push('', '-- partitioning (config "partitioning" / "logTable"): every entry is kept, ids and values unchanged.');
    if (conversion.statements.some((sql) => sql.includes(BOUND_CONSTRAINT))) {
      out.push(`-- Before this transaction, in short transactions of their own: ALTER TABLE … ADD CONSTRAINT ${BOUND_CONSTRAINT}`,
        '-- CHECK (ts < <bound>) NOT VALID, then VALIDATE CONSTRAINT (one scan; writers keep writing), so that the',
        '-- ATTACH below proves the partition constraint without scanning while writers wait.');
    }
    out.push(...conversion.statements);
  }
  for (const note of conversion.notes) out.push(commentText(`-- note: ${note}`));
  if (config.partitioning) {
    out.push(`-- then partitions for the current ${config.partitioning.interval} and ${config.partitioning.premake} ahead (as auditlog maintain does)`);
  }
  if (!(await ddlWatchInstalled(client, config.schema))) {
    out.push('', '-- DDL watch (only when installing as a superuser): two event triggers. One on ALTER TABLE keeps capture',
      '-- working when an audited table\'s columns change (fall_back_after_ddl()); one on CREATE TABLE and ALTER TABLE',
      '-- captures partitions created or attached later, releases detached ones and follows renamed tables',
      '-- (follow_table_ddl()). See docs/capture.md#schema-changes-alter-table',
      `-- CREATE EVENT TRIGGER … ON ddl_command_end WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION ${schema}.fall_back_after_ddl();`,
      `-- CREATE EVENT TRIGGER … ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE') EXECUTE FUNCTION ${schema}.follow_table_ddl();`);
  }
  for (const t of p.tables) {
    const name = displayName(t.generated.table);
    if (t.state === 'installed') {
      out.push('', commentText(`-- ${name}: up to date, unchanged`));
      continue;
    }
    out.push('', commentText(`-- ${name}: ${t.state}${t.detail ? ` (${t.detail})` : ''}`));
    const drop = dropExisting(config.schema, t).trimEnd();
    if (drop !== '') out.push(drop);
    out.push(t.generated.sql.trimEnd());
  }
  for (const o of p.orphans) {
    const name = displayName(o.table);
    out.push('', commentText(`-- ${name}: captured but no longer in the config`));
    out.push(options.prune ? dropOrphan(config.schema, p, o).trimEnd() : '-- (kept; --prune removes it)');
  }
  // Not rendered: they depend on the catalog at apply time (see src/security/roles.ts).
  out.push('', '-- then, from the config: ownership, grants, bypass role, and tenant policy (docs/security.md)');
  out.push('', 'COMMIT;', '');
  return out.join('\n');
}

/** Compares the database with the config: per table installed / outdated / missing / orphaned. */
export async function status(client: ClientBase, configInput: ConfigInput): Promise<StatusReport> {
  const config = normalize(configInput);
  const p = await plan(client, config, true);
  const pendingMigrations = await pendingMigrationCount(client, config.schema);
  const tables: TableStatus[] = [
    ...p.tables.map((t) => ({ table: displayName(t.generated.table), state: t.state, detail: t.detail })),
    ...p.dropped.map((t) => ({
      table: displayName(t), state: 'missing' as const,
      detail: 'table does not exist (dropped?): remove it from the config, then run auditlog install --prune to remove its capture function and tracking row',
    })),
    ...p.orphans.map((o) => ({
      table: displayName(o.table), state: 'orphaned' as const,
      detail: 'captured but not in the config: run auditlog install --prune to remove, or add it back',
    })),
  ].sort((a, b) => (a.table < b.table ? -1 : 1));
  const problems = await castProblems(client, config.schema);
  return {
    schema: config.schema,
    pendingMigrations,
    tables,
    problems,
    drift: pendingMigrations > 0 || tables.some((t) => t.state !== 'installed') || problems.length > 0,
    ddlWatch: await ddlWatchInstalled(client, config.schema),
  };
}

/**
 * Removes every capture trigger and generated function. The log itself is kept unless
 * `dropSchema` is set, which drops the audit schema and every entry in it.
 */
export async function uninstall(client: ClientBase, schema: string, options: UninstallOptions = {}): Promise<{ tables: string[] }> {
  const log = options.log ?? (() => undefined);
  return inTransaction(client, async () => {
    await lockSchema(client, schema);
    if (!(await schemaExists(client, schema))) return { tables: [] };
    await dropDdlWatch(client, schema);
    const installed = await readInstalledTriggers(client, schema);
    const tables = new Map<string, InstalledTrigger[]>();
    for (const t of installed) tables.set(tableKey(t), [...(tables.get(tableKey(t)) ?? []), t]);
    // Triggers first: a partitioned table's function is shared by the triggers on its partitions.
    for (const triggers of tables.values()) {
      await client.query(dropTriggers(triggers[0]!, triggers.map((t) => t.trigger)));
      log(`removed capture from ${displayName(triggers[0]!)}`);
    }
    for (const fn of new Set(installed.map((t) => t.functionName))) {
      await client.query(`DROP FUNCTION IF EXISTS ${quoteIdent(schema)}.${quoteIdent(fn)}()`);
    }
    // Generated functions whose triggers were already dropped by hand.
    const { rows } = await client.query<{ name: string }>(
      `SELECT p.proname AS name FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = $1 AND pg_catalog.obj_description(p.oid, 'pg_proc') LIKE $2`,
      [schema, `${COMMENT_PREFIX}%`],
    );
    for (const r of rows) await client.query(`DROP FUNCTION IF EXISTS ${quoteIdent(schema)}.${quoteIdent(r.name)}()`);
    if (options.dropSchema) {
      await client.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
      log(`dropped schema ${quoteIdent(schema)} and every log entry in it`);
    } else {
      await client.query(`DELETE FROM ${quoteIdent(schema)}.tracked_table`);
    }
    return { tables: [...tables.values()].map((t) => displayName(t[0]!)) };
  });
}
