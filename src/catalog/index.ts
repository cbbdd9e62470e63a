// Reads what pg-auditlog needs to know about the database from pg_catalog. No writes.
import type { ClientBase } from 'pg';
import { quoteIdent, type QualifiedName } from '../ident';

/**
 * How capture compares a column's old and new values (decided per column at install time):
 * - null: `IS DISTINCT FROM`, where the type's equality is image equality (built-in types whose
 *   default btree operator class has the `equalimage` support function `btequalimage`, or
 *   `btvarstrequalimage` under a deterministic collation, and arrays of them);
 * - 'jsonb': json (no equality operator) by the stored image of its jsonb form, which is what
 *   capture records;
 * - 'image': everything else (numeric, interval, float, jsonb, non-deterministic collations,
 *   types without equality such as hstore or jsonpath, composites, ranges, every type that is
 *   not built in) by the stored image (`record_image_ne`): exact, no operator or other code
 *   of the type runs, and no session setting matters.
 */
export type CompareAs = 'jsonb' | 'image' | null;

/**
 * How a key part (and object_repr) is rendered, independent of session settings:
 * - null: its text (`::text`; integers, text types, uuid, boolean, …);
 * - 'json': its JSON form (date, timestamp, time, timetz: ISO 8601 whatever the DateStyle);
 * - 'timestamptz': ISO 8601 in UTC, "2022-03-17T00:00:00+00:00", whatever the TimeZone;
 * - 'numeric': without trailing fraction zeros (1.50 and 1.5 are the same key);
 * - 'bytea': hex, "\x0102", whatever bytea_output;
 * - 'text': the type's output function (types that are not built in: no cast can intercept it).
 */
export type KeyForm = 'json' | 'timestamptz' | 'numeric' | 'bytea' | 'text' | null;

export interface CatalogColumn {
  name: string;
  /** format_type() of the column, e.g. "character varying(20)". */
  type: string;
  compareAs: CompareAs;
  /**
   * Serialise through the type's output function (as a JSON string) instead of handing the
   * value to jsonb_build_object: true when the type, or a type inside it (array element,
   * composite field, domain base), is not built in and could be given a cast to json that
   * would run inside capture (enums, ranges, extension types such as hstore or ltree).
   */
  textOutput: boolean;
  keyForm: KeyForm;
  /** A virtual generated column (PostgreSQL 18): computed on read, never stored. */
  virtual: boolean;
}

export interface CatalogTable extends QualifiedName {
  kind: 'table' | 'partitioned table';
  /** In attnum order. */
  columns: CatalogColumn[];
  /** Primary key columns in key order; empty when the table has none. */
  primaryKey: string[];
  /** True when the table is itself a partition of another table. */
  isPartition: boolean;
  /** Every partition below a partitioned table, at any depth, parents before children; else empty. */
  partitions: QualifiedName[];
}

export interface InstalledTrigger extends QualifiedName {
  trigger: string;
  functionName: string;
  /** The hash recorded in the trigger's comment, or null if the comment is missing or foreign. */
  hash: string | null;
  enabled: boolean;
}

/** Comment on every trigger and function the installer creates: "pg-auditlog <hash>". */
export const COMMENT_PREFIX = 'pg-auditlog ';

/**
 * The recursive step of a CTE reach(root, cur): the types directly inside type `cur`, that is
 * a domain's base type, an array's element type, a composite type's field types.
 */
const INNER_TYPES_STEP = `SELECT r.root, inner_type.oid
  FROM reach r
  JOIN pg_catalog.pg_type t ON t.oid = r.cur
  CROSS JOIN LATERAL (
    SELECT t.typbasetype WHERE t.typtype = 'd'
    UNION ALL
    SELECT t.typelem WHERE t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
    UNION ALL
    SELECT f.atttypid FROM pg_catalog.pg_attribute f
    WHERE t.typtype = 'c' AND f.attrelid = t.typrelid AND f.attnum > 0 AND NOT f.attisdropped
  ) AS inner_type(oid)`;

// Types created by initdb have OIDs below FirstNormalObjectId (16384): everything else (enums,
// composites, ranges, domains, extension types) was created later, possibly by a non-superuser.
const TABLES_SQL = `
WITH RECURSIVE cols AS (
  SELECT a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod, a.attcollation, a.attgenerated
  FROM pg_catalog.pg_attribute a
  WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
),
-- Every type inside a column's type: domain bases, array elements, composite fields.
reach(root, cur) AS (
  SELECT DISTINCT atttypid, atttypid FROM cols
  UNION
  ${INNER_TYPES_STEP}
),
-- Types that json serialisation would look up a cast to json for (not built in, and neither a
-- domain, an array nor a composite, which it looks through).
not_built_in AS (
  SELECT r.root, bool_or(r.cur >= 16384 AND t.typtype NOT IN ('d', 'c')
                         AND t.typsubscript <> 'pg_catalog.array_subscript_handler'::pg_catalog.regproc) AS any_cast
  FROM reach r JOIN pg_catalog.pg_type t ON t.oid = r.cur
  GROUP BY r.root
),
-- The column type without its domains.
strip(root, cur) AS (
  SELECT DISTINCT atttypid, atttypid FROM cols
  UNION ALL
  SELECT s.root, t.typbasetype FROM strip s JOIN pg_catalog.pg_type t ON t.oid = s.cur WHERE t.typtype = 'd'
),
base AS (
  SELECT s.root, t.oid AS base, t.typtype,
         CASE WHEN t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc THEN t.typelem END AS elem
  FROM strip s JOIN pg_catalog.pg_type t ON t.oid = s.cur
  WHERE t.typtype <> 'd'
),
-- Per column: the scalar whose equality decides (the type, or its array element), and whether
-- its default btree operator class says equality is image equality (equalimage, PG 13+).
classified AS (
  SELECT c.attrelid, c.attnum, b.base, nb.any_cast,
         (b.base < 16384 AND NOT nb.any_cast AND coalesce((
           SELECT ap.amproc = 'pg_catalog.btequalimage'::pg_catalog.regproc
                  OR (ap.amproc = 'pg_catalog.btvarstrequalimage'::pg_catalog.regproc
                      AND coalesce((SELECT co.collisdeterministic FROM pg_catalog.pg_collation co
                                    WHERE co.oid = c.attcollation), false))
           FROM pg_catalog.pg_opclass oc
           JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod AND am.amname = 'btree'
           JOIN pg_catalog.pg_amproc ap ON ap.amprocfamily = oc.opcfamily AND ap.amprocnum = 4
                                        AND ap.amproclefttype = oc.opcintype AND ap.amprocrighttype = oc.opcintype
           WHERE oc.opcdefault
             AND (oc.opcintype = coalesce(b.elem, b.base)
                  OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast k
                             WHERE k.castsource = coalesce(b.elem, b.base) AND k.casttarget = oc.opcintype AND k.castmethod = 'b'))
           ORDER BY oc.opcintype = coalesce(b.elem, b.base) DESC
           LIMIT 1), false)) AS image_equal
  FROM cols c
  JOIN base b ON b.root = c.atttypid
  JOIN not_built_in nb ON nb.root = c.atttypid
)
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
       coalesce(json_agg(json_build_object(
         'name', a.attname,
         'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
         'compareAs', CASE WHEN k.image_equal THEN NULL
                           WHEN k.base = 'pg_catalog.json'::pg_catalog.regtype THEN 'jsonb'
                           ELSE 'image' END,
         'textOutput', k.any_cast,
         'keyForm', CASE WHEN k.any_cast THEN 'text'
                         WHEN k.base = 'pg_catalog.timestamptz'::pg_catalog.regtype THEN 'timestamptz'
                         WHEN k.base = 'pg_catalog.numeric'::pg_catalog.regtype THEN 'numeric'
                         WHEN k.base = 'pg_catalog.bytea'::pg_catalog.regtype THEN 'bytea'
                         WHEN k.base IN ('pg_catalog.date'::pg_catalog.regtype, 'pg_catalog.timestamp'::pg_catalog.regtype,
                                         'pg_catalog.time'::pg_catalog.regtype, 'pg_catalog.timetz'::pg_catalog.regtype) THEN 'json'
                    END,
         'virtual', a.attgenerated = 'v') ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '[]') AS columns,
       coalesce((SELECT json_agg(ka.attname ORDER BY k.ord)
                 FROM pg_catalog.pg_index i
                 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_catalog.pg_attribute ka ON ka.attrelid = i.indrelid AND ka.attnum = k.attnum
                 WHERE i.indrelid = c.oid AND i.indisprimary), '[]') AS primary_key,
       c.relispartition AS is_partition,
       coalesce((SELECT json_agg(json_build_object('schema', pn.nspname, 'name', pc.relname) ORDER BY t.level, pn.nspname, pc.relname)
                 FROM pg_catalog.pg_partition_tree(c.oid) t
                 JOIN pg_catalog.pg_class pc ON pc.oid = t.relid
                 JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
                 WHERE t.relid <> c.oid AND c.relkind = 'p'), '[]') AS partitions
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN cols a ON a.attrelid = c.oid
LEFT JOIN classified k ON k.attrelid = a.attrelid AND k.attnum = a.attnum
WHERE c.oid = ANY($1::oid[])
GROUP BY n.nspname, c.relname, c.relkind, c.relispartition, c.oid
ORDER BY n.nspname, c.relname`;

interface TableRow {
  schema: string;
  name: string;
  relkind: string;
  columns: CatalogColumn[];
  primary_key: string[];
  is_partition: boolean;
  partitions: QualifiedName[];
}

async function readTablesByOid(client: ClientBase, oids: number[]): Promise<CatalogTable[]> {
  if (oids.length === 0) return [];
  const { rows } = await client.query<TableRow>(TABLES_SQL, [oids]);
  return rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    kind: r.relkind === 'p' ? 'partitioned table' : 'table',
    columns: r.columns,
    primaryKey: r.primary_key,
    isPartition: r.is_partition,
    partitions: r.partitions,
  }));
}

/**
 * The named tables that exist (ordinary or partitioned), keyed by "schema\0name".
 * Names that do not resolve to such a table are absent from the map.
 */
export async function readTables(client: ClientBase, names: QualifiedName[]): Promise<Map<string, CatalogTable>> {
  const { rows } = await client.query<{ oid: number }>(
    `SELECT c.oid
     FROM pg_catalog.pg_class c
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN unnest($1::text[], $2::text[]) AS want(schema, name) ON want.schema = n.nspname AND want.name = c.relname
     WHERE c.relkind IN ('r', 'p')`,
    [names.map((n) => n.schema), names.map((n) => n.name)],
  );
  const tables = await readTablesByOid(client, rows.map((r) => r.oid));
  return new Map(tables.map((t) => [tableKey(t), t]));
}

/** Every ordinary or partitioned table in the given schemas (partitions themselves excluded). */
export async function readTablesInSchemas(client: ClientBase, schemas: string[]): Promise<CatalogTable[]> {
  const { rows } = await client.query<{ oid: number }>(
    `SELECT c.oid
     FROM pg_catalog.pg_class c
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition`,
    [schemas],
  );
  return readTablesByOid(client, rows.map((r) => r.oid));
}

/** Names of tables that exist but are not ordinary tables (views, foreign tables…), for errors. */
export async function readRelationKinds(client: ClientBase, names: QualifiedName[]): Promise<Map<string, string>> {
  const { rows } = await client.query<{ schema: string; name: string; kind: string }>(
    `SELECT n.nspname AS schema, c.relname AS name,
            CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                           WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence'
                           WHEN 'i' THEN 'index' WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                           ELSE 'relation' END AS kind
     FROM pg_catalog.pg_class c
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN unnest($1::text[], $2::text[]) AS want(schema, name) ON want.schema = n.nspname AND want.name = c.relname`,
    [names.map((n) => n.schema), names.map((n) => n.name)],
  );
  return new Map(rows.map((r) => [tableKey(r), r.kind]));
}

/** Tables with a name differing only in case, to suggest "did you mean". */
export async function findSimilarTables(client: ClientBase, name: QualifiedName): Promise<QualifiedName[]> {
  const { rows } = await client.query<QualifiedName>(
    `SELECT n.nspname AS schema, c.relname AS name
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE lower(n.nspname) = lower($1) AND lower(c.relname) = lower($2) AND c.relkind IN ('r', 'p')
     ORDER BY 1, 2 LIMIT 3`,
    [name.schema, name.name],
  );
  return rows;
}

/**
 * Triggers whose function lives in the audit schema: what an installer left in place.
 * Triggers on the audit schema's own tables (the events NOTIFY on log_entry) belong to the
 * migrations, not to a captured table, and the audit schema can never be captured itself.
 */
export async function readInstalledTriggers(client: ClientBase, auditSchema: string): Promise<InstalledTrigger[]> {
  const { rows } = await client.query<{
    schema: string; name: string; trigger: string; function_name: string; comment: string | null; enabled: boolean;
  }>(
    `SELECT n.nspname AS schema, c.relname AS name, t.tgname AS trigger, p.proname AS function_name,
            pg_catalog.obj_description(t.oid, 'pg_trigger') AS comment,
            -- 'R' (ENABLE REPLICA) fires only when session_replication_role = replica: off for normal writes.
            t.tgenabled IN ('O', 'A') AS enabled
     FROM pg_catalog.pg_trigger t
     JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
     JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
     WHERE pn.nspname = $1 AND n.nspname <> $1 AND NOT t.tgisinternal AND t.tgparentid = 0
     ORDER BY 1, 2, 3`,
    [auditSchema],
  );
  return rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    trigger: r.trigger,
    functionName: r.function_name,
    hash: r.comment?.startsWith(COMMENT_PREFIX) ? r.comment.slice(COMMENT_PREFIX.length) : null,
    enabled: r.enabled,
  }));
}

export interface JsonCast {
  /** The audited table with a column of (or containing) the cast's source type. */
  table: string;
  source: string;
  target: string;
  /** The cast function (regprocedure text) and its owner, who is not a superuser. */
  function: string;
  owner: string;
}

/**
 * Casts to json or jsonb from a type used by an installed table (or inside one) whose function
 * a non-superuser owns. Capture never calls such a cast (it serialises those types by their
 * output function), but to_jsonb() would, in code of the table owner's, the DDL fallback, or a
 * reader's query.
 */
export async function readUserJsonCasts(client: ClientBase, auditSchema: string): Promise<JsonCast[]> {
  const { rows } = await client.query<JsonCast>(
    `WITH RECURSIVE cols AS (
       SELECT pg_catalog.format('%I.%I', t.table_schema, t.table_name) AS root, a.atttypid
       FROM ${quoteIdent(auditSchema)}.tracked_table t
       JOIN pg_catalog.pg_attribute a
         ON a.attrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', t.table_schema, t.table_name))
        AND a.attnum > 0 AND NOT a.attisdropped
     ),
     reach(root, cur) AS (
       SELECT DISTINCT root, atttypid FROM cols
       UNION
       ${INNER_TYPES_STEP}
     )
     SELECT DISTINCT r.root AS table, pg_catalog.format_type(c.castsource, NULL) AS source,
            pg_catalog.format_type(c.casttarget, NULL) AS target, p.oid::pg_catalog.regprocedure::text AS function,
            o.rolname AS owner
     FROM reach r
     JOIN pg_catalog.pg_cast c ON c.castsource = r.cur
     JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
     JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
     WHERE c.casttarget IN ('pg_catalog.json'::pg_catalog.regtype, 'pg_catalog.jsonb'::pg_catalog.regtype)
       AND NOT o.rolsuper
     ORDER BY 1, 2, 3`);
  return rows;
}

export async function schemaExists(client: ClientBase, schema: string): Promise<boolean> {
  const { rows } = await client.query('SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1', [schema]);
  return rows.length > 0;
}

export function tableKey(t: QualifiedName): string {
  return `${t.schema}\0${t.name}`;
}
