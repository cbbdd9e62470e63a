// The shape of the log as the catalog has it: auditlog.log_entry and, when partitioned, its
// partitions (per-table logs listed by (table_schema, table_name), time ranges on ts, default
// partitions), plus the period arithmetic that names and bounds time partitions.
import type { ClientBase } from 'pg';
import type { PartitionInterval } from '../config/validate';
import { quoteIdent, quoteLiteral, type QualifiedName } from '../ident';

export const ROOT = 'log_entry';
/** The per-table-log partition key: LIST on this expression routes a table's entries. */
export const ROUTE_KEY = 'ARRAY[table_schema, table_name]';
/** Where a plain log's entries go when it becomes partitioned by time. */
export const LEGACY_SUFFIX = '_legacy';
export const DEFAULT_SUFFIX = '_default';
/** Where the shared log goes when log_entry becomes partitioned by table. */
export const SHARED = 'log_entry_shared';

export interface LogNode {
  name: string;
  parent: string | null;
  /** How this table is partitioned itself: plain (a leaf), by range of ts, or by list of tables. */
  kind: 'plain' | 'range' | 'list';
  isDefault: boolean;
  /** For a partition of a range node: its bounds; null is MINVALUE / MAXVALUE. */
  from: Date | null;
  to: Date | null;
  /** For a partition of a list node: the (schema, table) pairs routed to it. */
  routes: QualifiedName[];
}

export type LogTree = Map<string, LogNode>;

/** log_entry and every partition under it, by name. Empty when the audit schema has no log yet. */
export async function readLogTree(client: ClientBase, schema: string): Promise<LogTree> {
  const { rows } = await client.query<{
    name: string; parent: string | null; strategy: string | null; is_default: boolean;
    from_ts: Date | null; to_ts: Date | null; routes: string[] | null;
  }>(
    `WITH RECURSIVE tree AS (
       SELECT c.oid, NULL::pg_catalog.oid AS parent FROM pg_catalog.pg_class c
       WHERE c.oid = pg_catalog.to_regclass($1)
       UNION ALL
       SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.oid
     )
     SELECT c.relname AS name, p.relname AS parent, pt.partstrat AS strategy,
            coalesce(pg_catalog.pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT', false) AS is_default,
            b.from_ts, b.to_ts, b.routes
     FROM tree t
     JOIN pg_catalog.pg_class c ON c.oid = t.oid
     LEFT JOIN pg_catalog.pg_class p ON p.oid = t.parent
     LEFT JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = c.oid
     LEFT JOIN pg_catalog.pg_partitioned_table ppt ON ppt.partrelid = t.parent
     CROSS JOIN LATERAL (
       SELECT CASE WHEN ppt.partstrat = 'r' THEN (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']*)''\\)'))[1]::timestamptz END AS from_ts,
              CASE WHEN ppt.partstrat = 'r' THEN (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']*)''\\)'))[1]::timestamptz END AS to_ts,
              CASE WHEN ppt.partstrat = 'l' THEN ARRAY(
                SELECT pg_catalog.replace(m[1], '''''', '''')
                FROM pg_catalog.regexp_matches(pg_catalog.pg_get_expr(c.relpartbound, c.oid), '''((?:[^'']|'''')*)''', 'g') AS m) END AS routes
     ) b
     WHERE c.relkind IN ('r', 'p')`,
    [`${quoteIdent(schema)}.${quoteIdent(ROOT)}`],
  );
  const tree: LogTree = new Map();
  for (const r of rows) {
    const routes: QualifiedName[] = [];
    for (const text of r.routes ?? []) {
      // Each route is the text of a two-element text[]: parse it with PostgreSQL, not by hand.
      const { rows: [pair] } = await client.query<{ a: string[] }>('SELECT $1::text[] AS a', [text]);
      if (pair && pair.a.length === 2) routes.push({ schema: pair.a[0]!, name: pair.a[1]! });
    }
    tree.set(r.name, {
      name: r.name, parent: r.parent,
      kind: r.strategy === 'r' ? 'range' : r.strategy === 'l' ? 'list' : 'plain',
      isDefault: r.is_default, from: r.from_ts, to: r.to_ts, routes,
    });
  }
  return tree;
}

export function childrenOf(tree: LogTree, parent: string): LogNode[] {
  return [...tree.values()].filter((n) => n.parent === parent);
}

/** Tables that hold rows (the leaves), under `top` (default: the whole log). */
export function leavesOf(tree: LogTree, top = ROOT): LogNode[] {
  const node = tree.get(top);
  if (!node) return [];
  if (node.kind === 'plain') return [node];
  return childrenOf(tree, top).flatMap((c) => leavesOf(tree, c.name));
}

/** The partitioned-by-time tables: where partitions are created ahead and dropped behind. */
export function rangeNodes(tree: LogTree): LogNode[] {
  return [...tree.values()].filter((n) => n.kind === 'range');
}

export function qualifiedLog(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

// ---------------------------------------------------------------------------------------------
// Periods (UTC): a day, an ISO week starting Monday, or a calendar month.

export function periodStart(t: Date, interval: PartitionInterval): Date {
  const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  if (interval === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  if (interval === 'month') d.setUTCDate(1);
  return d;
}

export function addPeriods(t: Date, interval: PartitionInterval, n: number): Date {
  const d = new Date(t.getTime());
  if (interval === 'day') d.setUTCDate(d.getUTCDate() + n);
  else if (interval === 'week') d.setUTCDate(d.getUTCDate() + 7 * n);
  else d.setUTCMonth(d.getUTCMonth() + n);
  return d;
}

/** users_log + 2026-12-01 → users_log_p20261201. */
export function partitionName(node: string, from: Date): string {
  const iso = from.toISOString();
  const day = iso.slice(0, 10).replace(/-/g, '');
  // A clipped period may start inside a day (after a legacy partition's bound): keep names unique.
  const time = iso.slice(11, 19) === '00:00:00' ? '' : `_${iso.slice(11, 19).replace(/:/g, '')}`;
  return `${node}_p${day}${time}`;
}

/** A timestamptz literal for a partition bound, in UTC. */
export function tsLiteral(t: Date): string {
  return quoteLiteral(t.toISOString().replace('T', ' ').replace('Z', '+00'));
}

/** FOR VALUES of a per-table log: the (schema, table) pairs as text[] values. */
export function routesBound(routes: QualifiedName[]): string {
  return `FOR VALUES IN (${routes.map((r) => `ARRAY[${quoteLiteral(r.schema)}, ${quoteLiteral(r.name)}]`).join(', ')})`;
}
