// Reads what pg-auditlog needs to know about the database from pg_catalog. No writes.
import type { ClientBase } from 'pg';
import type { QualifiedName } from '../ident';

export interface CatalogColumn {
  name: string;
  /** format_type() of the column, e.g. "character varying(20)". */
  type: string;
  /**
   * How to compare old and new values: json has no equality operator, so as jsonb (what is
   * stored); xml, geometric and composite types (which may hold json) as text; else directly.
   */
  compareAs: 'jsonb' | 'text' | null;
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

const TABLES_SQL = `
WITH RECURSIVE type_parts(root, cur) AS (
  SELECT DISTINCT a.atttypid, a.atttypid
  FROM pg_catalog.pg_attribute a
  WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT p.root, CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.typelem END
  FROM type_parts p JOIN pg_catalog.pg_type t ON t.oid = p.cur
  WHERE t.typtype = 'd' OR (t.typcategory = 'A' AND t.typelem <> 0)
),
comparison AS (
  SELECT p.root,
         CASE
           WHEN bool_or(t.typtype = 'c') THEN 'text'
           WHEN bool_or(n.nspname = 'pg_catalog' AND t.typname IN ('xml', 'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle')) THEN 'text'
           WHEN bool_or(n.nspname = 'pg_catalog' AND t.typname = 'json')
             THEN CASE WHEN bool_or(t.typcategory = 'A') THEN 'text' ELSE 'jsonb' END
         END AS compare_as
  FROM type_parts p
  JOIN pg_catalog.pg_type t ON t.oid = p.cur
  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  GROUP BY p.root
)
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
       coalesce(json_agg(json_build_object(
         'name', a.attname,
         'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
         'compareAs', cmp.compare_as) ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '[]') AS columns,
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
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN comparison cmp ON cmp.root = a.atttypid
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

export async function schemaExists(client: ClientBase, schema: string): Promise<boolean> {
  const { rows } = await client.query('SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1', [schema]);
  return rows.length > 0;
}

export function tableKey(t: QualifiedName): string {
  return `${t.schema}\0${t.name}`;
}
