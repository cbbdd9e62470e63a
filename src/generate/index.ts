// Pure functions: table plan in, SQL text out. No I/O, deterministic, so the text can be
// hashed, reviewed with `auditlog install --dry-run`, and compared against golden files.
import type { TablePlan } from '../config/resolve';
import { COMMENT_PREFIX } from '../catalog';
import { commentText, displayName, generatedName, qualified, quoteIdent, quoteLiteral, shortHash, type QualifiedName } from '../ident';

/** What a masked value is replaced with, in changes and snapshots. */
export const MASK = '[masked]';

/** jsonb_build_object takes at most 100 arguments: build larger objects in chunks. */
const PAIRS_PER_CALL = 50;

export interface GeneratedTable {
  table: QualifiedName;
  functionName: string;
  /** Triggers this table gets, by name. */
  triggers: string[];
  /** Hash of `definition`, recorded in comments so `status` can detect drift. */
  hash: string;
  /** CREATE FUNCTION + CREATE TRIGGER statements (no comments, no DROPs). */
  definition: string;
  /** `definition` followed by the COMMENT statements that record the hash. */
  sql: string;
}

export function functionNameFor(table: QualifiedName): string {
  return generatedName('capture', `${table.schema}_${table.name}`, `${table.schema}.${table.name}`);
}

function triggerNamesFor(auditSchema: string, table: QualifiedName) {
  const identity = `${auditSchema}:${table.schema}.${table.name}`;
  return {
    row: generatedName('auditlog', 'row', identity),
    truncate: generatedName('auditlog', 'truncate', identity),
  };
}

/** `$tag$` that does not occur in `body`, so the body can never close its own quote. */
function dollarQuote(body: string, tag: string): string {
  let candidate = `$${tag}$`;
  for (let i = 1; body.includes(candidate); i++) candidate = `$${tag}${i}$`;
  return `${candidate}\n${body}${candidate}`;
}

function buildObject(pairs: Array<[string, string]>, indent: string): string {
  if (pairs.length === 0) return `'{}'::jsonb`;
  const chunks: string[] = [];
  for (let i = 0; i < pairs.length; i += PAIRS_PER_CALL) {
    const lines = pairs.slice(i, i + PAIRS_PER_CALL).map(([k, v]) => `${indent}  ${quoteLiteral(k)}, ${v}`);
    chunks.push(`jsonb_build_object(\n${lines.join(',\n')})`);
  }
  return chunks.join(` ||\n${indent}`);
}

/** The value stored for a column of record `rec` (OLD or NEW): masked where configured. */
function valueOf(rec: 'OLD' | 'NEW', column: { name: string; masked: boolean }): string {
  const ref = `${rec}.${quoteIdent(column.name)}`;
  return column.masked ? `CASE WHEN ${ref} IS NULL THEN NULL ELSE ${quoteLiteral(MASK)} END` : ref;
}

function pkExpression(rec: 'OLD' | 'NEW', primaryKey: string[]): string {
  if (primaryKey.length === 1) return `${rec}.${quoteIdent(primaryKey[0]!)}::text`;
  return `jsonb_build_array(${primaryKey.map((c) => `${rec}.${quoteIdent(c)}`).join(', ')})::text`;
}

/** Statements that set row_pk, row_repr and row_snapshot from record `rec`. */
function identify(plan: TablePlan, rec: 'OLD' | 'NEW'): string[] {
  const lines = [`    row_pk := ${pkExpression(rec, plan.primaryKey)};`];
  if (plan.objectRepr !== undefined) lines.push(`    row_repr := ${rec}.${quoteIdent(plan.objectRepr)}::text;`);
  if (plan.snapshot) {
    const pairs = plan.columns.map((c): [string, string] => [c.name, valueOf(rec, c)]);
    lines.push(`    row_snapshot := ${buildObject(pairs, '      ')};`);
  }
  return lines;
}

function insertBranch(plan: TablePlan): string[] {
  const pairs = plan.columns.map((c): [string, string] => [c.name, `jsonb_build_array(NULL, ${valueOf('NEW', c)})`]);
  return [`    diff := ${buildObject(pairs, '      ')};`, ...identify(plan, 'NEW')];
}

function deleteBranch(plan: TablePlan): string[] {
  const pairs = plan.columns.map((c): [string, string] => [c.name, `jsonb_build_array(${valueOf('OLD', c)}, NULL)`]);
  return [`    diff := ${buildObject(pairs, '      ')};`, ...identify(plan, 'OLD')];
}

function updateBranch(plan: TablePlan): string[] {
  const lines = [`    diff := '{}'::jsonb;`];
  for (const c of plan.columns) {
    const col = quoteIdent(c.name);
    // json, xml and geometric types have no equality operator (see catalog compareAs).
    const cast = c.compareAs ? `::${c.compareAs}` : '';
    lines.push(
      `    IF OLD.${col}${cast} IS DISTINCT FROM NEW.${col}${cast} THEN`,
      `      diff := diff || jsonb_build_object(${quoteLiteral(c.name)}, jsonb_build_array(${valueOf('OLD', c)}, ${valueOf('NEW', c)}));`,
      `    END IF;`,
    );
  }
  lines.push(
    `    IF diff = '{}'::jsonb THEN`,
    `      RETURN NULL;  -- no tracked column changed: no entry`,
    `    END IF;`,
    ...identify(plan, 'NEW'),
  );
  return lines;
}

/** Context columns, read from transaction-local settings set by withAuditSession(). */
function contextValues(auditSchema: string): string[] {
  const setting = (name: string) => `NULLIF(current_setting(${quoteLiteral(`auditlog.${name}`)}, true), '')`;
  const schema = quoteIdent(auditSchema);
  return [
    setting('actor'),
    setting('cid'),
    `${schema}.try_inet(${setting('remote_addr')})`,
    `${schema}.invoking_user()`,
    `NULLIF(current_setting('application_name'), '')`,
    `${schema}.try_jsonb(${setting('data')})`,
    setting('tenant'),
  ];
}

function functionBody(auditSchema: string, plan: TablePlan): string {
  const rowActions = plan.actions.filter((a) => a !== 'truncate');
  const branches: string[] = [];
  const branch = (op: string, body: string[]) =>
    branches.push(`  ${branches.length === 0 ? 'IF' : 'ELSIF'} TG_OP = '${op}' THEN`, ...body);
  if (rowActions.includes('insert')) branch('INSERT', insertBranch(plan));
  if (rowActions.includes('update')) branch('UPDATE', updateBranch(plan));
  if (rowActions.includes('delete')) branch('DELETE', deleteBranch(plan));
  if (plan.actions.includes('truncate')) branch('TRUNCATE', ['    diff := NULL;']);
  branches.push('  END IF;');

  const values = [
    quoteLiteral(plan.table.schema), quoteLiteral(plan.table.name),
    'row_pk', 'row_repr', 'lower(TG_OP)', 'diff', 'row_snapshot',
    ...contextValues(auditSchema),
  ];
  return [
    'DECLARE',
    '  diff jsonb;',
    '  row_pk text;',
    '  row_repr text;',
    '  row_snapshot jsonb;',
    'BEGIN',
    // auditlog.disable, honoured only for the bypass role (sql/4_security.sql).
    `  IF ${quoteIdent(auditSchema)}.capture_disabled(TG_TABLE_SCHEMA, TG_TABLE_NAME) THEN RETURN NULL; END IF;`,
    ...branches,
    '',
    `  INSERT INTO ${quoteIdent(auditSchema)}.log_entry`,
    '    (table_schema, table_name, object_pk, object_repr, action, changes, snapshot,',
    '     actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)',
    `  VALUES (${values.join(',\n          ')});`,
    '  RETURN NULL;',
    'END',
    '',
  ].join('\n');
}

function header(plan: TablePlan): string {
  const tracked = plan.columns.map((c) => (c.masked ? `${c.name} (masked)` : c.name)).join(', ');
  return [
    `-- ${displayName(plan.table)}: capture ${plan.actions.join(', ')}`,
    `-- tracked columns: ${tracked}`,
    `-- object_pk: ${plan.primaryKey.join(', ')}${plan.snapshot ? '; snapshot: yes' : ''}`,
  ].map(commentText).join('\n');
}

/** SQL that creates the capture function and triggers for one table. */
export function generateTable(auditSchema: string, plan: TablePlan): GeneratedTable {
  const functionName = functionNameFor(plan.table);
  const fn = `${quoteIdent(auditSchema)}.${quoteIdent(functionName)}`;
  const names = triggerNamesFor(auditSchema, plan.table);
  const table = qualified(plan.table);
  const rowEvents = plan.actions.filter((a) => a !== 'truncate').map((a) => a.toUpperCase());

  const statements = [
    header(plan),
    [
      `CREATE OR REPLACE FUNCTION ${fn}()`,
      'RETURNS trigger',
      'LANGUAGE plpgsql',
      'SECURITY DEFINER',
      'SET search_path = pg_catalog, pg_temp',
      `AS ${dollarQuote(functionBody(auditSchema, plan), 'capture')};`,
    ].join('\n'),
  ];
  const triggers: string[] = [];
  if (rowEvents.length > 0) {
    triggers.push(names.row);
    statements.push(
      `CREATE TRIGGER ${quoteIdent(names.row)}\n  AFTER ${rowEvents.join(' OR ')} ON ${table}\n  FOR EACH ROW EXECUTE FUNCTION ${fn}();`,
    );
  }
  if (plan.actions.includes('truncate')) {
    triggers.push(names.truncate);
    statements.push(
      `CREATE TRIGGER ${quoteIdent(names.truncate)}\n  AFTER TRUNCATE ON ${table}\n  FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();`,
    );
  }
  const definition = statements.join('\n\n') + '\n';
  const hash = shortHash(definition, 12);
  const comment = quoteLiteral(`${COMMENT_PREFIX}${hash}`);
  const comments = [
    `COMMENT ON FUNCTION ${fn}() IS ${comment};`,
    ...triggers.map((t) => `COMMENT ON TRIGGER ${quoteIdent(t)} ON ${table} IS ${comment};`),
  ];
  return {
    table: plan.table, functionName, triggers, hash, definition,
    sql: `${definition}\n${comments.join('\n')}\n`,
  };
}

/** DROP statements that remove one table's capture. */
export function dropTableCapture(auditSchema: string, table: QualifiedName, triggers: string[], functionName: string): string {
  return [
    ...triggers.map((t) => `DROP TRIGGER IF EXISTS ${quoteIdent(t)} ON ${qualified(table)};`),
    `DROP FUNCTION IF EXISTS ${quoteIdent(auditSchema)}.${quoteIdent(functionName)}();`,
  ].join('\n') + '\n';
}
