// Pure functions: table plan in, SQL text out. No I/O, deterministic, so the text can be
// hashed, reviewed with `auditlog install --dry-run`, and compared against golden files.
//
// Two capture modes write the same entries:
// - row: one AFTER … FOR EACH ROW trigger; the diff is a per-column IS DISTINCT FROM chain.
// - statement: one AFTER … FOR EACH STATEMENT trigger per action with transition tables; one
//   INSERT … SELECT writes every entry of the statement, context read once per statement.
import type { ColumnPlan, TablePlan } from '../config/resolve';
import { COMMENT_PREFIX, type CompareAs, type KeyForm } from '../catalog';
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
export function dollarQuote(body: string, tag: string): string {
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

/**
 * The text of a value through its type's output function: format() calls it directly, where
 * `::text` or to_jsonb would look up a cast, which the owner of an enum, range or composite type
 * may define and which would then run inside capture. num_nulls tests the value itself (IS NULL
 * is also true of a composite whose fields are all null).
 */
function outputText(r: string): string {
  return `CASE WHEN pg_catalog.num_nulls(${r}) = 1 THEN NULL ELSE pg_catalog.format('%s', ${r}) END`;
}

/** The value stored for a column: masked where configured. */
function valueOf(rec: string, column: ColumnPlan): string {
  const r = ref(rec, column.name);
  if (column.masked) return `CASE WHEN ${r} IS NULL THEN NULL ELSE ${quoteLiteral(MASK)} END`;
  return column.textOutput ? outputText(r) : r;
}

/**
 * True when a column's stored value differs (see CompareAs in src/catalog): IS DISTINCT FROM
 * only where equality is image equality; otherwise the stored images, which needs no equality
 * operator, runs no code of the type and depends on no session setting.
 */
export function changedExpression(before: string, after: string, compareAs: CompareAs | undefined): string {
  if (compareAs === 'jsonb') return `pg_catalog.record_image_ne(ROW(${before}::pg_catalog.jsonb), ROW(${after}::pg_catalog.jsonb))`;
  // 'text' is what installs before the image comparison recorded; it is compared by image too.
  if (compareAs) return `pg_catalog.record_image_ne(ROW(${before}), ROW(${after}))`;
  return `${before} IS DISTINCT FROM ${after}`;
}

function changed(before: string, after: string, column: ColumnPlan): string {
  return changedExpression(ref(before, column.name), ref(after, column.name), column.compareAs);
}

/**
 * One key part (or object_repr), rendered the same from every session (see KeyForm in
 * src/catalog): `single` gives text, otherwise a value for jsonb_build_array.
 */
export function keyPartExpression(r: string, form: KeyForm | undefined, single: boolean): string {
  switch (form) {
    case 'json': return single ? `(pg_catalog.to_jsonb(${r}) #>> '{}')` : r;
    case 'timestamptz':
      return `CASE WHEN pg_catalog.isfinite(${r}) THEN (pg_catalog.to_jsonb(${r} AT TIME ZONE 'UTC') #>> '{}') || '+00:00' ELSE ${r}::text END`;
    case 'numeric': return single ? `pg_catalog.trim_scale(${r})::text` : `pg_catalog.trim_scale(${r})`;
    case 'bytea': return `E'\\\\x' || pg_catalog.encode(${r}, 'hex')`;
    case 'text': return outputText(r);
    default: return single ? `${r}::text` : r;
  }
}

function pkExpression(rec: string, plan: TablePlan): string {
  const parts = plan.primaryKey;
  if (parts.length === 1) return keyPartExpression(ref(rec, parts[0]!), plan.keyForms?.[0], true);
  return `jsonb_build_array(${parts.map((c, i) => keyPartExpression(ref(rec, c), plan.keyForms?.[i], false)).join(', ')})::text`;
}

function reprExpression(plan: TablePlan, rec: string): string {
  return plan.objectRepr === undefined ? 'NULL' : keyPartExpression(ref(rec, plan.objectRepr), plan.reprForm, true);
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

/**
 * Only the changed columns, built in PL/pgSQL into `diff` (row mode, and statement mode's
 * one-row UPDATE). When no tracked column changed, the trigger returns without an entry.
 */
function diffStatements(plan: TablePlan, before: string, after: string, indent: string): string[] {
  const lines = [`${indent}diff := '{}'::jsonb;`];
  for (const c of plan.columns) {
    lines.push(
      `${indent}IF ${changed(before, after, c)} THEN`,
      `${indent}  diff := diff || jsonb_build_object(${quoteLiteral(c.name)}, ${pair(valueOf(before, c), valueOf(after, c))});`,
      `${indent}END IF;`,
    );
  }
  return [...lines, `${indent}IF diff = '{}'::jsonb THEN`, `${indent}  RETURN NULL;  -- no tracked column changed: no entry`, `${indent}END IF;`];
}

const LOG_COLUMNS = [
  '(table_schema, table_name, object_pk, object_repr, action, changes, snapshot,',
  ' actor, cid, remote_addr, db_user, application_name, additional_data, tenant_id)',
];

const setting = (name: string) => `NULLIF(current_setting(${quoteLiteral(`auditlog.${name}`)}, true), '')`;

/** The context, from transaction-local settings set by withAuditSession(), as expressions. */
function contextExpressions(auditSchema: string): Array<[string, string, string]> {
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

/**
 * In a capture function, the two settings that must be parsed (client address, request data)
 * are read as text into raw_remote_addr / raw_data and converted by contextConversion(); the
 * others are plain expressions. `declareAll` (statement mode) declares every ctx_ variable,
 * read once per statement; row mode reads the plain ones in its INSERT instead.
 */
function contextDeclarations(auditSchema: string, declareAll: boolean): string[] {
  return contextExpressions(auditSchema).flatMap(([name, type, expr]): string[] => {
    if (name === 'ctx_remote_addr') return ['  raw_remote_addr text := ' + setting('remote_addr') + ';', '  ctx_remote_addr inet;'];
    if (name === 'ctx_data') return ['  raw_data text := ' + setting('data') + ';', '  ctx_data jsonb;'];
    return declareAll ? [`  ${name} ${type} := ${expr};`] : [];
  });
}

/**
 * Both casts in one subtransaction: try_inet() and try_jsonb() each start one of their own and
 * run with their own search_path: 53,000 instructions more per statement than this block
 * (21,000 with both casts), which costs nothing when neither is set. A value that does not parse must never
 * fail the write: then each is converted alone (an address that is not one is NULL, data that
 * is not JSON is kept as a JSON string).
 */
function contextConversion(auditSchema: string): string[] {
  const schema = quoteIdent(auditSchema);
  return [
    '  IF raw_remote_addr IS NOT NULL OR raw_data IS NOT NULL THEN',
    '    BEGIN',
    '      ctx_remote_addr := raw_remote_addr::inet;',
    '      ctx_data := raw_data::jsonb;',
    '    EXCEPTION WHEN others THEN',
    `      ctx_remote_addr := ${schema}.try_inet(raw_remote_addr);`,
    `      ctx_data := ${schema}.try_jsonb(raw_data);`,
    '    END;',
    '  END IF;',
  ];
}

/**
 * The table an entry names, read when the trigger fires so that entries follow a rename. A
 * partitioned table's capture also fires on its partitions, whose entries name the
 * partitioned table (the root of the tree, looked up once per statement into tbl_schema/tbl_name).
 */
function tableIdentity(plan: TablePlan): [string, string] {
  return plan.partitioned ? ['tbl_schema', 'tbl_name'] : ['TG_TABLE_SCHEMA', 'TG_TABLE_NAME'];
}

/** Statement mode at every level of a partition tree (see triggers()). */
function effectiveMode(plan: TablePlan): CaptureMode {
  return plan.partitioned ? 'statement' : plan.mode;
}

/** auditlog.disable, honoured only for the bypass role (sql/4_security.sql). */
function bypassCheck(auditSchema: string, plan: TablePlan): string {
  const [schema, name] = tableIdentity(plan);
  return `  IF ${quoteIdent(auditSchema)}.capture_disabled(${schema}, ${name}) THEN RETURN NULL; END IF;`;
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
function notifyCheck(auditSchema: string, plan: TablePlan): string[] {
  const schema = quoteIdent(auditSchema);
  const mode = effectiveMode(plan);
  const count = mode === 'row' ? '1' : 'entry_count';
  const [tblSchema, tblName] = tableIdentity(plan);
  return [
    // A partitioned table's branches add up their counts themselves.
    ...(mode === 'row' || plan.partitioned ? [] : ['  GET DIAGNOSTICS entry_count = ROW_COUNT;']),
    `  IF ${mode === 'row' ? '' : 'entry_count > 0 AND '}${schema}.notify_turn(${quoteLiteral(auditSchema)}) THEN`,
    `    PERFORM ${schema}.notify_entries(lastval(), ${count}, ${tblSchema}, ${tblName}, lower(TG_OP));`,
    '  END IF;',
  ];
}

// ---- row mode ---------------------------------------------------------------------------

function rowBody(auditSchema: string, plan: TablePlan): string {
  const identify = (rec: string) => [
    `    row_pk := ${pkExpression(rec, plan)};`,
    ...(plan.objectRepr !== undefined ? [`    row_repr := ${reprExpression(plan, rec)};`] : []),
    ...(plan.snapshot ? [`    row_snapshot := ${snapshotExpression(plan, rec, '      ')};`] : []),
  ];
  const branches: string[] = [];
  const branch = (op: string, body: string[]) =>
    branches.push(`  ${branches.length === 0 ? 'IF' : 'ELSIF'} TG_OP = '${op}' THEN`, ...body);
  if (plan.actions.includes('insert')) {
    branch('INSERT', [`    diff := ${wholeRow(plan, 'NEW', 'insert', '      ')};`, ...identify('NEW')]);
  }
  if (plan.actions.includes('update')) branch('UPDATE', [...diffStatements(plan, 'OLD', 'NEW', '    '), ...identify('NEW')]);
  if (plan.actions.includes('delete')) {
    branch('DELETE', [`    diff := ${wholeRow(plan, 'OLD', 'delete', '      ')};`, ...identify('OLD')]);
  }
  if (plan.actions.includes('truncate')) branch('TRUNCATE', ['    diff := NULL;']);
  branches.push('  END IF;');

  const values = [
    ...tableIdentity(plan),
    'row_pk', 'row_repr', 'lower(TG_OP)', 'diff', 'row_snapshot',
    ...contextExpressions(auditSchema).map(([name, , expr]) => (name === 'ctx_remote_addr' || name === 'ctx_data' ? name : expr)),
  ];
  return [
    'DECLARE',
    '  diff jsonb;',
    '  row_pk text;',
    '  row_repr text;',
    '  row_snapshot jsonb;',
    ...contextDeclarations(auditSchema, false),
    'BEGIN',
    bypassCheck(auditSchema, plan),
    ...contextConversion(auditSchema),
    ...branches,
    '',
    `  INSERT INTO ${quoteIdent(auditSchema)}.log_entry`,
    ...LOG_COLUMNS.map((l) => `    ${l}`),
    `  VALUES (${values.join(',\n          ')});`,
    ...notifyCheck(auditSchema, plan),
    ...unattributedCheck(plan, 'row'),
    '  RETURN NULL;',
    'END',
    '',
  ].join('\n');
}

// ---- statement mode -----------------------------------------------------------------------

/** A column alias (`auditlog_<base>`) that is not one of the table's columns. */
function freeAlias(plan: TablePlan, base = 'ordinal'): string {
  let alias = `auditlog_${base}`;
  for (let i = 1; plan.allColumns.includes(alias); i++) alias = `auditlog_${base}_${i}`;
  return alias;
}

function statementBody(auditSchema: string, plan: TablePlan): string {
  const schema = quoteIdent(auditSchema);
  const ctx = contextExpressions(auditSchema);
  const ctxNames = ctx.map(([name]) => name).join(', ');
  const insertInto = [`    INSERT INTO ${schema}.log_entry`, ...LOG_COLUMNS.map((l) => `      ${l}`)];
  const table = tableIdentity(plan).join(', ');
  const select = (rec: string, action: string, changes: string) =>
    `    SELECT ${table}, ${pkExpression(rec, plan)}, ${reprExpression(plan, rec)}, '${action}',\n` +
    `           ${changes},\n` +
    `           ${snapshotExpression(plan, rec, '             ')},\n` +
    `           ${ctxNames}`;
  const anyChanged = (o: string, n: string) => plan.columns.map((c) => changed(o, n, c)).join(`
       OR `);
  // A partitioned table's branches run several INSERTs: each adds its row count.
  const counted = plan.partitioned ? ['    GET DIAGNOSTICS row_count = ROW_COUNT;', '    entry_count := entry_count + row_count;'] : [];

  const branches: string[] = [];
  const branch = (op: string, body: string[]) =>
    branches.push(`  ${branches.length === 0 ? 'IF' : 'ELSIF'} TG_OP = '${op}' THEN`, ...body);
  if (plan.actions.includes('insert')) {
    branch('INSERT', [...insertInto, select('n', 'insert', wholeRow(plan, 'n', 'insert', '             ')), '    FROM new_rows n;', ...counted]);
  }
  if (plan.actions.includes('update')) {
    const ord = quoteIdent(freeAlias(plan));
    const inStep = [
      ...insertInto,
      select('n', 'update', diffExpression(plan, 'o', 'n', '           ')),
      '    -- PostgreSQL fills the old and new transition tables in step, so the k-th old row and the',
      '    -- k-th new row are one row before and after, even when the statement changed its key.',
      `    FROM (SELECT row_number() OVER () AS ${ord}, * FROM old_rows) o`,
      `    JOIN (SELECT row_number() OVER () AS ${ord}, * FROM new_rows) n ON n.${ord} = o.${ord}`,
      '    -- No tracked column changed: no entry. (Cheap comparisons here rather than a test of the',
      '    -- diff: that would need a subquery, which costs more per statement and per row.)',
      `    WHERE ${anyChanged('o', 'n')};`,
      ...counted,
    ];
    if (!plan.partitioned) {
      // Most UPDATEs change one row. Its old and new images need no pairing: they are read into
      // two records and the entry is built as row mode builds it, without the window functions,
      // the join and the comparisons in its condition, whose set-up is most of the statement's
      // cost. None: nothing to write. (Plain tables only: their transition tables always hold
      // as many old images as new ones.)
      branch('UPDATE', [
        // (PERFORM sets ROW_COUNT: 0, 1 or 2, without the aggregate a count(*) would start.)
        '    PERFORM FROM old_rows LIMIT 2;',
        '    GET DIAGNOSTICS entry_count = ROW_COUNT;',
        '    IF entry_count = 0 THEN',
        '      RETURN NULL;',
        '    ELSIF entry_count = 1 THEN',
        '      SELECT * INTO old_row FROM old_rows;',
        '      SELECT * INTO new_row FROM new_rows;',
        ...diffStatements(plan, 'old_row', 'new_row', '      '),
        // (Not re-indented: the expressions hold quoted identifiers, which may contain newlines.)
        ...insertInto,
        `    VALUES (${table}, ${pkExpression('new_row', plan)}, ${reprExpression(plan, 'new_row')}, 'update', diff,`,
        `            ${snapshotExpression(plan, 'new_row', '              ')},`,
        `            ${ctxNames});`,
        '    ELSE',
        ...inStep.map((l) => `  ${l}`),
        '    END IF;',
      ]);
    } else {
      branch('UPDATE', [
        '    -- A row that moves to another partition is deleted from one and inserted into the other.',
        '    -- If a BEFORE INSERT trigger on the destination drops it, its old image has no new one and',
        '    -- the transition tables are no longer in step. Equal counts: nothing was dropped (an UPDATE',
        '    -- never adds a new image without an old one), pair by position. Otherwise pair by key.',
        '    IF (SELECT count(*) FROM old_rows) = (SELECT count(*) FROM new_rows) THEN',
        ...inStep.map((l) => `  ${l}`),
        '    ELSE',
        ...keyPairing(plan, insertInto, select, anyChanged).map((l) => `  ${l}`),
        '    END IF;',
      ]);
    }
  }
  if (plan.actions.includes('delete')) {
    branch('DELETE', [...insertInto, select('o', 'delete', wholeRow(plan, 'o', 'delete', '             ')), '    FROM old_rows o;', ...counted]);
  }
  if (plan.actions.includes('truncate')) {
    const entry = [...insertInto, `    VALUES (${table}, NULL, NULL, 'truncate', NULL, NULL, ${ctxNames});`];
    branch('TRUNCATE', plan.partitioned ? partitionTruncate(auditSchema, plan, entry, ctx) : entry);
  }
  branches.push('  END IF;');
  const declarations = [
    '#variable_conflict use_variable',
    'DECLARE',
    '  -- The context, read once per statement.',
    ...contextDeclarations(auditSchema, true),
    `  entry_count bigint${plan.partitioned ? ' := 0' : ''};`,
    // The one-row UPDATE's images (records, not %ROWTYPE: the function follows a renamed table).
    ...(!plan.partitioned && plan.actions.includes('update') ? ['  old_row record;', '  new_row record;', '  diff jsonb;'] : []),
  ];
  if (!plan.partitioned) {
    return [...declarations, 'BEGIN', bypassCheck(auditSchema, plan), ...contextConversion(auditSchema), ...branches,
      ...notifyCheck(auditSchema, plan), ...unattributedCheck(plan, 'statement'), '  RETURN NULL;', 'END', ''].join('\n');
  }
  return [
    ...declarations,
    '  row_count bigint;',
    '  tbl_schema text;',
    '  tbl_name text;',
    'BEGIN',
    '  IF TG_OP = \'TRUNCATE\' AND TG_WHEN = \'AFTER\' THEN',
    '    -- Every BEFORE TRUNCATE trigger of the statement has run: forget which tables it covered.',
    `    DELETE FROM ${schema}.truncate_cover WHERE txid = pg_current_xact_id();`,
    '    RETURN NULL;',
    '  END IF;',
    '  -- Fired on the partitioned table or on one of its partitions: entries name the partitioned',
    '  -- table (the root of the tree), under its current name.',
    '  SELECT n.nspname, c.relname INTO tbl_schema, tbl_name',
    '  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace',
    '  WHERE c.oid = coalesce(pg_partition_root(TG_RELID), TG_RELID);',
    bypassCheck(auditSchema, plan),
    ...contextConversion(auditSchema),
    ...branches,
    ...notifyCheck(auditSchema, plan),
    ...unattributedCheck(plan, 'statement'),
    '  RETURN NULL;',
    'END',
    '',
  ].join('\n');
}

/**
 * UPDATE of a partitioned table when the transition tables are not in step: an old and a new
 * image are one row only when they have the same object key, and that key occurs once on each
 * side. Old images left over are rows the statement removed (delete entries), new ones left
 * over rows it created (insert entries): what happened to each object, never a guess.
 */
function keyPairing(
  plan: TablePlan, insertInto: string[], select: (rec: string, action: string, changes: string) => string,
  anyChanged: (o: string, n: string) => string,
): string[] {
  const key = quoteIdent(freeAlias(plan, 'key'));
  const count = quoteIdent(freeAlias(plan, 'key_count'));
  const keyed = (rows: string, rec: string) =>
    `(SELECT ${pkExpression(rec, plan)} AS ${key}, count(*) OVER (PARTITION BY ${pkExpression(rec, plan)}) AS ${count}, ${rec}.* FROM ${rows} ${rec})`;
  const unique = (rec: string) => `${rec}.${count} = 1`;
  const counted = ['    GET DIAGNOSTICS row_count = ROW_COUNT;', '    entry_count := entry_count + row_count;'];
  return [
    ...insertInto,
    select('n', 'update', diffExpression(plan, 'o', 'n', '           ')),
    `    FROM ${keyed('old_rows', 'o')} o`,
    `    JOIN ${keyed('new_rows', 'n')} n ON n.${key} = o.${key} AND ${unique('o')} AND ${unique('n')}`,
    `    WHERE ${anyChanged('o', 'n')};`,
    ...counted,
    ...insertInto,
    select('o', 'delete', wholeRow(plan, 'o', 'delete', '             ')),
    `    FROM ${keyed('old_rows', 'o')} o`,
    `    WHERE NOT (${unique('o')} AND EXISTS (SELECT 1 FROM ${keyed('new_rows', 'n')} n WHERE n.${key} = o.${key} AND ${unique('n')}));`,
    ...counted,
    ...insertInto,
    select('n', 'insert', wholeRow(plan, 'n', 'insert', '             ')),
    `    FROM ${keyed('new_rows', 'n')} n`,
    `    WHERE NOT (${unique('n')} AND EXISTS (SELECT 1 FROM ${keyed('old_rows', 'o')} o WHERE o.${key} = n.${key} AND ${unique('o')}));`,
    ...counted,
  ];
}

/**
 * TRUNCATE in a partition tree. PostgreSQL fires the TRUNCATE triggers of the named table and
 * of every partition below it. The first BEFORE trigger of a subtree writes its entries and
 * marks the partitions below it as covered (in truncate_cover, which only the audit owner can
 * write), so each truncated row is logged once. The partitioned table itself: one `truncate`
 * entry. A partition: one `delete` entry per row it holds (a `truncate` entry would tell
 * history that every row of the partitioned table is gone).
 */
function partitionTruncate(auditSchema: string, plan: TablePlan, entry: string[], ctx: Array<[string, string, string]>): string[] {
  const schema = quoteIdent(auditSchema);
  // The delete entries of one partition, read by dynamic SQL since the partition varies. The
  // context goes in as parameters; the partition's name is a regclass, printed quoted.
  const params = ['tbl_schema', 'tbl_name', ...ctx.map(([name]) => name)];
  const selectDeletes = [
    `INSERT INTO ${schema}.log_entry`,
    ...LOG_COLUMNS.map((l) => `  ${l}`),
    `SELECT $1, $2, ${pkExpression('o', plan)}, ${reprExpression(plan, 'o')}, 'delete',`,
    `       ${wholeRow(plan, 'o', 'delete', '         ')},`,
    `       ${snapshotExpression(plan, 'o', '         ')},`,
    `       ${ctx.map((_, i) => `$${i + 3}`).join(', ')}`,
    'FROM ',
  ].join('\n');
  return [
    `    DELETE FROM ${schema}.truncate_cover WHERE txid = pg_current_xact_id() AND relid = TG_RELID;`,
    '    IF FOUND THEN',
    '      RETURN NULL;  -- covered by a table above it, truncated by the same statement',
    '    END IF;',
    `    INSERT INTO ${schema}.truncate_cover (relid)`,
    '    SELECT relid FROM pg_partition_tree(TG_RELID) WHERE relid <> TG_RELID;',
    '    IF pg_partition_root(TG_RELID) = TG_RELID THEN',
    ...entry.map((l) => `  ${l}`),
    '    ELSE',
    `      EXECUTE ${dollarQuote(selectDeletes, 'q').replace(/\n/g, '\n        ')} || TG_RELID::regclass::text || ' o'`,
    `        USING ${params.join(', ')};`,
    '    END IF;',
    '    GET DIAGNOSTICS entry_count = ROW_COUNT;',
  ];
}

// ---- both ---------------------------------------------------------------------------------

function header(plan: TablePlan): string {
  const tracked = plan.columns.map((c) => (c.masked ? `${c.name} (masked)` : c.name)).join(', ');
  return [
    `-- ${displayName(plan.table)}: capture ${plan.actions.join(', ')} (${plan.partitioned
      ? 'partitioned table: statement-level triggers on it and on every partition, entries under its name'
      : `${plan.mode} mode`})`,
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

/**
 * The triggers on `target`: the table itself or, for a partitioned table, one of its
 * partitions. A partitioned table gets statement-level triggers at every level in both modes:
 * PostgreSQL fires a statement trigger only on the table a statement names, so each write is
 * captured once, by the triggers of the level it was aimed at, and its transition tables hold
 * the rows of every partition below. (Row triggers would see a row moved between partitions
 * as a delete and an insert, and cannot fire on TRUNCATE.)
 */
function triggers(auditSchema: string, plan: TablePlan, fn: string, target: QualifiedName = plan.table): TriggerSpec[] {
  const table = qualified(target);
  const specs: TriggerSpec[] = [];
  if (effectiveMode(plan) === 'row') {
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
    // In a partition tree the entries are written before the truncation (a partition's rows
    // are read then); an AFTER trigger ends the statement's bookkeeping.
    const when = plan.partitioned ? 'BEFORE' : 'AFTER';
    specs.push({ name, sql: `CREATE TRIGGER ${quoteIdent(name)}\n  ${when} TRUNCATE ON ${table}\n  FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();` });
    if (plan.partitioned) {
      const end = triggerName(auditSchema, plan.table, 'truncate_end');
      specs.push({ name: end, sql: `CREATE TRIGGER ${quoteIdent(end)}\n  AFTER TRUNCATE ON ${table}\n  FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();` });
    }
  }
  return specs;
}

/** What a partition of `plan.table` gets, with a placeholder name: part of the hash. */
const PARTITION_PLACEHOLDER: QualifiedName = { schema: 'partition', name: 'of table' };

/** SQL that creates the capture function and triggers for one table. */
export function generateTable(auditSchema: string, plan: TablePlan): GeneratedTable {
  const functionName = functionNameFor(plan.table);
  const fn = `${quoteIdent(auditSchema)}.${quoteIdent(functionName)}`;
  const mode = effectiveMode(plan);
  const body = mode === 'row' ? rowBody(auditSchema, plan) : statementBody(auditSchema, plan);
  const specs = triggers(auditSchema, plan, fn);
  const statements = [
    header(plan),
    [
      `CREATE OR REPLACE FUNCTION ${fn}()`,
      'RETURNS trigger',
      'LANGUAGE plpgsql',
      'SECURITY DEFINER',
      ...functionOptions(mode),
      `AS ${dollarQuote(body, 'capture')};`,
    ].join('\n'),
    ...specs.map((s) => s.sql),
  ];
  const definition = statements.join('\n\n') + '\n';
  // Partitions come and go (the DDL watch adds their triggers): the hash covers what each one
  // gets, not which ones exist, so a new partition with its triggers leaves the table installed.
  const hash = shortHash(plan.partitioned
    ? `${definition}\n${triggers(auditSchema, plan, fn, PARTITION_PLACEHOLDER).map((s) => s.sql).join('\n')}`
    : definition, 12);
  const comment = quoteLiteral(`${COMMENT_PREFIX}${hash}`);
  const commentsOn = (target: QualifiedName) =>
    specs.map((s) => `COMMENT ON TRIGGER ${quoteIdent(s.name)} ON ${qualified(target)} IS ${comment};`);
  const partitions = plan.partitioned ? plan.partitions ?? [] : [];
  const partitionSql = partitions.map((p) => [
    commentText(`-- partition ${displayName(p)}: writes aimed at it are logged as ${displayName(plan.table)}`),
    ...triggers(auditSchema, plan, fn, p).map((s) => s.sql),
    ...commentsOn(p),
  ].join('\n\n'));
  const comments = [`COMMENT ON FUNCTION ${fn}() IS ${comment};`, ...commentsOn(plan.table)];
  return {
    table: plan.table, functionName, triggers: specs.map((s) => s.name), hash, definition,
    sql: `${definition}\n${comments.join('\n')}\n${partitionSql.map((p) => `\n${p}\n`).join('')}`,
  };
}

/** DROP TRIGGER statements for capture triggers on one table (the table or a partition). */
export function dropTriggers(table: QualifiedName, triggerNames: string[]): string {
  return triggerNames.map((t) => `DROP TRIGGER IF EXISTS ${quoteIdent(t)} ON ${qualified(table)};\n`).join('');
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
    quoteLiteral(plan.table.schema), quoteLiteral(plan.table.name), pkExpression('b', plan), reprExpression(plan, 'b'),
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
                      AND e.object_pk = ${pkExpression('b', plan)})
  RETURNING 1
)
SELECT (SELECT count(*) FROM batch)::int AS scanned, (SELECT count(*) FROM written)::int AS recorded,
       (SELECT jsonb_build_object(${plan.primaryKey.map((c) => `${quoteLiteral(c)}, b.${quoteIdent(c)}`).join(', ')})::text
        FROM batch AS b ORDER BY ${pk.map((c) => `b.${c}`).join(' DESC, ')} DESC LIMIT 1) AS last`;
}
