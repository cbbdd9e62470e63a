// Pure functions: table plan in, SQL text out. No I/O, deterministic, so the text can be
// hashed, reviewed with `auditlog install --dry-run`, and compared against golden files.
//
// Two capture modes write the same entries:
// - row: one AFTER … FOR EACH ROW trigger; the diff is a per-column IS DISTINCT FROM chain.
// - statement: one AFTER … FOR EACH STATEMENT trigger per action with transition tables; one
//   INSERT … SELECT writes every entry of the statement, context read once per statement.
import type { ColumnPlan, TablePlan } from '../config/resolve';
import { COMMENT_PREFIX } from '../catalog';
import { commentText, displayName, generatedName, qualified, quoteIdent, quoteLiteral, shortHash, type QualifiedName } from '../ident';
import type { CaptureMode } from '../interfaces';

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

function triggerName(auditSchema: string, table: QualifiedName, kind: string): string {
  return generatedName('auditlog', kind, `${auditSchema}:${table.schema}.${table.name}`);
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

/** A column of row `rec` (OLD, NEW, or a transition-table alias). */
function ref(rec: string, column: string): string {
  return `${rec}.${quoteIdent(column)}`;
}

/** The value stored for a column: masked where configured. */
function valueOf(rec: string, column: ColumnPlan): string {
  const r = ref(rec, column.name);
  return column.masked ? `CASE WHEN ${r} IS NULL THEN NULL ELSE ${quoteLiteral(MASK)} END` : r;
}

/** json, xml and geometric types have no equality operator (see catalog compareAs). */
function changed(before: string, after: string, column: ColumnPlan): string {
  const cast = column.compareAs ? `::${column.compareAs}` : '';
  return `${ref(before, column.name)}${cast} IS DISTINCT FROM ${ref(after, column.name)}${cast}`;
}

function pkExpression(rec: string, primaryKey: string[]): string {
  if (primaryKey.length === 1) return `${ref(rec, primaryKey[0]!)}::text`;
  return `jsonb_build_array(${primaryKey.map((c) => ref(rec, c)).join(', ')})::text`;
}

function reprExpression(plan: TablePlan, rec: string): string {
  return plan.objectRepr === undefined ? 'NULL' : `${ref(rec, plan.objectRepr)}::text`;
}

function snapshotExpression(plan: TablePlan, rec: string, indent: string): string {
  if (!plan.snapshot) return 'NULL::jsonb';
  return buildObject(plan.columns.map((c): [string, string] => [c.name, valueOf(rec, c)]), indent);
}

/**
 * The JSON pair [before, after]. jsonb_build_array skips all type lookups for a NULL side, so
 * insert and delete images cost about 40% less than with ARRAY[before, after] (measured on
 * PostgreSQL 15 and 18), and an array-typed column needs no special case.
 */
function pair(before: string, after: string): string {
  return `jsonb_build_array(${before}, ${after})`;
}

/** Every tracked column as [null, new] (insert) or [old, null] (delete). */
function wholeRow(plan: TablePlan, rec: string, side: 'insert' | 'delete', indent: string): string {
  return buildObject(plan.columns.map((c): [string, string] => [
    c.name, side === 'insert' ? pair('NULL', valueOf(rec, c)) : pair(valueOf(rec, c), 'NULL'),
  ]), indent);
}

/** Only the changed columns, as one expression (statement mode). */
function diffExpression(plan: TablePlan, before: string, after: string, indent: string): string {
  return plan.columns.map((c) =>
    `CASE WHEN ${changed(before, after, c)}\n${indent}  THEN jsonb_build_object(${quoteLiteral(c.name)}, ${pair(valueOf(before, c), valueOf(after, c))})\n${indent}  ELSE '{}'::jsonb END`,
  ).join(` ||\n${indent}`);
}

const LOG_COLUMNS = [
  '(table_schema, table_name, object_pk, object_repr, action, changes, snapshot,',
  ' actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)',
];

/** The context, from transaction-local settings set by withAuditSession(). */
function contextExpressions(auditSchema: string): Array<[string, string, string]> {
  const setting = (name: string) => `NULLIF(current_setting(${quoteLiteral(`auditlog.${name}`)}, true), '')`;
  const schema = quoteIdent(auditSchema);
  return [
    ['ctx_actor', 'text', setting('actor')],
    ['ctx_cid', 'text', setting('cid')],
    ['ctx_remote_addr', 'inet', `${schema}.try_inet(${setting('remote_addr')})`],
    ['ctx_db_user', 'text', `${schema}.invoking_user()`],
    ['ctx_application_name', 'text', `NULLIF(current_setting('application_name'), '')`],
    ['ctx_data', 'jsonb', `${schema}.try_jsonb(${setting('data')})`],
    ['ctx_tenant', 'text', setting('tenant')],
  ];
}

/** auditlog.disable, honoured only for the bypass role (sql/4_security.sql). */
function bypassCheck(auditSchema: string): string {
  return `  IF ${quoteIdent(auditSchema)}.capture_disabled(TG_TABLE_SCHEMA, TG_TABLE_NAME) THEN RETURN NULL; END IF;`;
}

/**
 * The unattributed-write policy (config `unattributed`), after the entries are written: `reject`
 * fails the writing statement, `warn` raises a WARNING; `allow` generates nothing.
 */
function unattributedCheck(plan: TablePlan, mode: CaptureMode): string[] {
  if (!plan.unattributed || plan.unattributed === 'allow') return [];
  const actor = mode === 'row' ? `NULLIF(current_setting('auditlog.actor', true), '')` : 'ctx_actor';
  const wrote = mode === 'row' ? '' : 'entry_count > 0 AND ';
  const table = quoteLiteral(displayName(plan.table));
  return plan.unattributed === 'reject'
    ? [`  IF ${wrote}${actor} IS NULL THEN`,
      `    RAISE EXCEPTION 'pg-auditlog: write to % rejected: no actor is set (unattributed: reject)', ${table}`,
      `      USING HINT = 'Set auditlog.actor in the writing transaction: withAuditSession(), auditPool(), or SET LOCAL auditlog.actor = ''migration:name''.';`,
      '  END IF;']
    : [`  IF ${wrote}${actor} IS NULL THEN`,
      `    RAISE WARNING 'pg-auditlog: write to % without an actor (unattributed: warn)', ${table};`,
      '  END IF;'];
}

/**
 * After the INSERT: wake event subscribers. notify_turn() is inlined (sql/5_notify-from-capture.sql):
 * a settings read and at most one advisory-lock attempt; one transaction per 10 ms window sends.
 * Row mode writes exactly one entry per call, so only statement mode asks how many.
 */
function notifyCheck(auditSchema: string, mode: CaptureMode): string[] {
  const schema = quoteIdent(auditSchema);
  const count = mode === 'row' ? '1' : 'entry_count';
  return [
    ...(mode === 'row' ? [] : ['  GET DIAGNOSTICS entry_count = ROW_COUNT;']),
    `  IF ${mode === 'row' ? '' : 'entry_count > 0 AND '}${schema}.notify_turn(${quoteLiteral(auditSchema)}) THEN`,
    `    PERFORM ${schema}.notify_entries(lastval(), ${count}, TG_TABLE_SCHEMA, TG_TABLE_NAME, lower(TG_OP));`,
    '  END IF;',
  ];
}

// ---- row mode ---------------------------------------------------------------------------

function rowBody(auditSchema: string, plan: TablePlan): string {
  const identify = (rec: string) => [
    `    row_pk := ${pkExpression(rec, plan.primaryKey)};`,
    ...(plan.objectRepr !== undefined ? [`    row_repr := ${reprExpression(plan, rec)};`] : []),
    ...(plan.snapshot ? [`    row_snapshot := ${snapshotExpression(plan, rec, '      ')};`] : []),
  ];
  const branches: string[] = [];
  const branch = (op: string, body: string[]) =>
    branches.push(`  ${branches.length === 0 ? 'IF' : 'ELSIF'} TG_OP = '${op}' THEN`, ...body);
  if (plan.actions.includes('insert')) {
    branch('INSERT', [`    diff := ${wholeRow(plan, 'NEW', 'insert', '      ')};`, ...identify('NEW')]);
  }
  if (plan.actions.includes('update')) {
    const lines = [`    diff := '{}'::jsonb;`];
    for (const c of plan.columns) {
      lines.push(
        `    IF ${changed('OLD', 'NEW', c)} THEN`,
        `      diff := diff || jsonb_build_object(${quoteLiteral(c.name)}, ${pair(valueOf('OLD', c), valueOf('NEW', c))});`,
        '    END IF;',
      );
    }
    lines.push(`    IF diff = '{}'::jsonb THEN`, '      RETURN NULL;  -- no tracked column changed: no entry', '    END IF;', ...identify('NEW'));
    branch('UPDATE', lines);
  }
  if (plan.actions.includes('delete')) {
    branch('DELETE', [`    diff := ${wholeRow(plan, 'OLD', 'delete', '      ')};`, ...identify('OLD')]);
  }
  if (plan.actions.includes('truncate')) branch('TRUNCATE', ['    diff := NULL;']);
  branches.push('  END IF;');

  const values = [
    quoteLiteral(plan.table.schema), quoteLiteral(plan.table.name),
    'row_pk', 'row_repr', 'lower(TG_OP)', 'diff', 'row_snapshot',
    ...contextExpressions(auditSchema).map(([, , expr]) => expr),
  ];
  return [
    'DECLARE',
    '  diff jsonb;',
    '  row_pk text;',
    '  row_repr text;',
    '  row_snapshot jsonb;',
    'BEGIN',
    bypassCheck(auditSchema),
    ...branches,
    '',
    `  INSERT INTO ${quoteIdent(auditSchema)}.log_entry`,
    ...LOG_COLUMNS.map((l) => `    ${l}`),
    `  VALUES (${values.join(',\n          ')});`,
    ...notifyCheck(auditSchema, 'row'),
    ...unattributedCheck(plan, 'row'),
    '  RETURN NULL;',
    'END',
    '',
  ].join('\n');
}

// ---- statement mode -----------------------------------------------------------------------

/** A column alias for the row ordinal that is not one of the table's columns. */
function ordinalAlias(plan: TablePlan): string {
  let alias = 'auditlog_ordinal';
  for (let i = 1; plan.allColumns.includes(alias); i++) alias = `auditlog_ordinal_${i}`;
  return alias;
}

function statementBody(auditSchema: string, plan: TablePlan): string {
  const ctx = contextExpressions(auditSchema);
  const ctxNames = ctx.map(([name]) => name).join(', ');
  const insertInto = [`    INSERT INTO ${quoteIdent(auditSchema)}.log_entry`, ...LOG_COLUMNS.map((l) => `      ${l}`)];
  const table = `${quoteLiteral(plan.table.schema)}, ${quoteLiteral(plan.table.name)}`;
  const select = (rec: string, action: string, changes: string) =>
    `    SELECT ${table}, ${pkExpression(rec, plan.primaryKey)}, ${reprExpression(plan, rec)}, '${action}',\n` +
    `           ${changes},\n` +
    `           ${snapshotExpression(plan, rec, '             ')},\n` +
    `           ${ctxNames}`;

  const branches: string[] = [];
  const branch = (op: string, body: string[]) =>
    branches.push(`  ${branches.length === 0 ? 'IF' : 'ELSIF'} TG_OP = '${op}' THEN`, ...body);
  if (plan.actions.includes('insert')) {
    branch('INSERT', [...insertInto, select('n', 'insert', wholeRow(plan, 'n', 'insert', '             ')), '    FROM new_rows n;']);
  }
  if (plan.actions.includes('update')) {
    const ord = quoteIdent(ordinalAlias(plan));
    branch('UPDATE', [
      ...insertInto,
      select('n', 'update', diffExpression(plan, 'o', 'n', '           ')),
      '    -- PostgreSQL fills the old and new transition tables in step, so the k-th old row and the',
      '    -- k-th new row are one row before and after, even when the statement changed its key.',
      `    FROM (SELECT row_number() OVER () AS ${ord}, * FROM old_rows) o`,
      `    JOIN (SELECT row_number() OVER () AS ${ord}, * FROM new_rows) n ON n.${ord} = o.${ord}`,
      '    -- No tracked column changed: no entry. (Cheap comparisons here rather than a test of the',
      '    -- diff: that would need a subquery, which costs more per statement and per row.)',
      `    WHERE ${plan.columns.map((c) => changed('o', 'n', c)).join(`
       OR `)};`,
    ]);
  }
  if (plan.actions.includes('delete')) {
    branch('DELETE', [...insertInto, select('o', 'delete', wholeRow(plan, 'o', 'delete', '             ')), '    FROM old_rows o;']);
  }
  if (plan.actions.includes('truncate')) {
    branch('TRUNCATE', [...insertInto, `    VALUES (${table}, NULL, NULL, 'truncate', NULL, NULL, ${ctxNames});`]);
  }
  branches.push('  END IF;');
  return [
    '#variable_conflict use_variable',
    'DECLARE',
    '  -- The context, read once per statement.',
    ...ctx.map(([name, type, expr]) => `  ${name} ${type} := ${expr};`),
    '  entry_count bigint;',
    'BEGIN',
    bypassCheck(auditSchema),
    ...branches,
    ...notifyCheck(auditSchema, 'statement'),
    ...unattributedCheck(plan, 'statement'),
    '  RETURN NULL;',
    'END',
    '',
  ].join('\n');
}

// ---- both ---------------------------------------------------------------------------------

function header(plan: TablePlan): string {
  const tracked = plan.columns.map((c) => (c.masked ? `${c.name} (masked)` : c.name)).join(', ');
  return [
    `-- ${displayName(plan.table)}: capture ${plan.actions.join(', ')} (${plan.mode} mode)`,
    `-- tracked columns: ${tracked}`,
    `-- object_pk: ${plan.primaryKey.join(', ')}${plan.snapshot ? '; snapshot: yes' : ''}`,
  ].map(commentText).join('\n');
}

function functionOptions(mode: CaptureMode): string[] {
  const options = ['SET search_path = pg_catalog, pg_temp'];
  if (mode === 'statement') {
    // Transition tables have no statistics, and PL/pgSQL caches plans: a plan made for a
    // one-row statement must not pair 100,000 rows by nested loop. JIT never pays off here.
    options.push('SET enable_nestloop = off', 'SET jit = off');
  }
  return options;
}

interface TriggerSpec { name: string; sql: string }

function triggers(auditSchema: string, plan: TablePlan, fn: string): TriggerSpec[] {
  const table = qualified(plan.table);
  const specs: TriggerSpec[] = [];
  if (plan.mode === 'row') {
    const events = plan.actions.filter((a) => a !== 'truncate').map((a) => a.toUpperCase());
    if (events.length > 0) {
      const name = triggerName(auditSchema, plan.table, 'row');
      specs.push({ name, sql: `CREATE TRIGGER ${quoteIdent(name)}\n  AFTER ${events.join(' OR ')} ON ${table}\n  FOR EACH ROW EXECUTE FUNCTION ${fn}();` });
    }
  } else {
    // A trigger with transition tables may have only one event.
    const transition = { insert: 'NEW TABLE AS new_rows', update: 'OLD TABLE AS old_rows NEW TABLE AS new_rows', delete: 'OLD TABLE AS old_rows' };
    for (const action of ['insert', 'update', 'delete'] as const) {
      if (!plan.actions.includes(action)) continue;
      const name = triggerName(auditSchema, plan.table, action);
      specs.push({
        name,
        sql: `CREATE TRIGGER ${quoteIdent(name)}\n  AFTER ${action.toUpperCase()} ON ${table}\n  REFERENCING ${transition[action]}\n  FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();`,
      });
    }
  }
  if (plan.actions.includes('truncate')) {
    const name = triggerName(auditSchema, plan.table, 'truncate');
    specs.push({ name, sql: `CREATE TRIGGER ${quoteIdent(name)}\n  AFTER TRUNCATE ON ${table}\n  FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();` });
  }
  return specs;
}

/** SQL that creates the capture function and triggers for one table. */
export function generateTable(auditSchema: string, plan: TablePlan): GeneratedTable {
  const functionName = functionNameFor(plan.table);
  const fn = `${quoteIdent(auditSchema)}.${quoteIdent(functionName)}`;
  const body = plan.mode === 'row' ? rowBody(auditSchema, plan) : statementBody(auditSchema, plan);
  const specs = triggers(auditSchema, plan, fn);
  const statements = [
    header(plan),
    [
      `CREATE OR REPLACE FUNCTION ${fn}()`,
      'RETURNS trigger',
      'LANGUAGE plpgsql',
      'SECURITY DEFINER',
      ...functionOptions(plan.mode),
      `AS ${dollarQuote(body, 'capture')};`,
    ].join('\n'),
    ...specs.map((s) => s.sql),
  ];
  const definition = statements.join('\n\n') + '\n';
  const hash = shortHash(definition, 12);
  const comment = quoteLiteral(`${COMMENT_PREFIX}${hash}`);
  const table = qualified(plan.table);
  const comments = [
    `COMMENT ON FUNCTION ${fn}() IS ${comment};`,
    ...specs.map((s) => `COMMENT ON TRIGGER ${quoteIdent(s.name)} ON ${table} IS ${comment};`),
  ];
  return {
    table: plan.table, functionName, triggers: specs.map((s) => s.name), hash, definition,
    sql: `${definition}\n${comments.join('\n')}\n`,
  };
}

/** DROP statements that remove one table's capture. */
export function dropTableCapture(auditSchema: string, table: QualifiedName, triggerNames: string[], functionName: string): string {
  return [
    ...triggerNames.map((t) => `DROP TRIGGER IF EXISTS ${quoteIdent(t)} ON ${qualified(table)};`),
    `DROP FUNCTION IF EXISTS ${quoteIdent(auditSchema)}.${quoteIdent(functionName)}();`,
  ].join('\n') + '\n';
}

// ---- baseline ----------------------------------------------------------------------------

/**
 * One batch of `auditlog baseline`: the next `$1` rows of the table in primary key order
 * (after the key `$2`, a jsonb object of the key columns, unless `first`), each recorded as a
 * `baseline` entry (its whole tracked, masked image as `[null, value]`, like an insert) unless
 * the row already has an entry. FOR SHARE waits for a writer of the row that is still in
 * progress, so its entry is visible. Returns scanned, recorded and last (the batch's last
 * key as jsonb text, NULL when the batch was empty).
 */
export function baselineBatchSql(auditSchema: string, plan: TablePlan, first: boolean): string {
  const target = qualified(plan.table);
  const log = `${quoteIdent(auditSchema)}.log_entry`;
  const pk = plan.primaryKey.map(quoteIdent);
  const after = first ? '' : `
  WHERE (${pk.map((c) => `t.${c}`).join(', ')}) > (SELECT ${pk.map((c) => `k.${c}`).join(', ')} FROM jsonb_populate_record(NULL::${target}, $2::jsonb) AS k)`;
  const values = [
    quoteLiteral(plan.table.schema), quoteLiteral(plan.table.name), pkExpression('b', plan.primaryKey), reprExpression(plan, 'b'),
    `'baseline'`, wholeRow(plan, 'b', 'insert', '           '), snapshotExpression(plan, 'b', '           '),
    ...contextExpressions(auditSchema).map(([, , expr]) => expr),
  ];
  return `WITH batch AS MATERIALIZED (
  SELECT t.* FROM ${target} AS t${after}
  ORDER BY ${pk.map((c) => `t.${c}`).join(', ')}
  LIMIT $1
  FOR SHARE OF t
), written AS (
  INSERT INTO ${log}
    ${LOG_COLUMNS.join('\n    ')}
  SELECT ${values.join(',\n         ')}
  FROM batch AS b
  WHERE NOT EXISTS (SELECT 1 FROM ${log} AS e
                    WHERE e.table_name = ${quoteLiteral(plan.table.name)} AND e.table_schema = ${quoteLiteral(plan.table.schema)}
                      AND e.object_pk = ${pkExpression('b', plan.primaryKey)})
  RETURNING 1
)
SELECT (SELECT count(*) FROM batch)::int AS scanned, (SELECT count(*) FROM written)::int AS recorded,
       (SELECT jsonb_build_object(${plan.primaryKey.map((c) => `${quoteLiteral(c)}, b.${quoteIdent(c)}`).join(', ')})::text
        FROM batch AS b ORDER BY ${pk.map((c) => `b.${c}`).join(' DESC, ')} DESC LIMIT 1) AS last`;
}
