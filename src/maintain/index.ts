// `auditlog maintain`: keeps a partitioned log ready and bounded. Creates the partitions of the
// next periods ahead of time, moves entries that a default partition caught into partitions of
// their own, and with "retention" drops whole partitions that are entirely older than it, so
// retention is a catalog operation, not a DELETE. Idempotent, safe to run from cron every few
// minutes: one run at a time (advisory lock), each step in its own short transaction that gives
// up after lockTimeoutMs rather than queueing writers behind it.
import type { ClientBase } from 'pg';
import { validateConfig, type NormalizedConfig, type NormalizedPartitioning, type PartitionInterval } from '../config/validate';
import { inTransaction, isPool, type Db } from '../db';
import { quoteIdent, quoteLiteral, type QualifiedName } from '../ident';
import type { AuditConfig, MaintainOptions, MaintainResult } from '../interfaces';
import { secureLogTable } from '../security/roles';
import { dropStaleBound } from './convert';
import { analyzeLeaves, ensureLookupStatistics } from './statistics';
import {
  ROOT, addPeriods, childrenOf, leavesOf, partitionName, periodStart, qualifiedLog, rangeNodes, readLogTree, tsLiteral,
  type LogNode, type LogTree,
} from './tree';

export { readLogTree } from './tree';

const LOCK_NOT_AVAILABLE = '55P03';

function normalize(config: AuditConfig | NormalizedConfig): NormalizedConfig {
  return Array.isArray((config as NormalizedConfig).tables) ? (config as NormalizedConfig) : validateConfig(config);
}

/** The lock install takes: maintenance steps never interleave with an install. */
async function lockAgainstInstall(client: ClientBase, schema: string): Promise<void> {
  await client.query('SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))', [`pg-auditlog install ${schema}`]);
}

/** Period starts (UTC) of the entries a default partition holds. */
async function strayPeriods(client: ClientBase, schema: string, table: string, interval: PartitionInterval): Promise<Date[]> {
  const { rows } = await client.query<{ p: Date }>(
    `SELECT DISTINCT pg_catalog.date_trunc($1, ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS p FROM ${qualifiedLog(schema, table)} ORDER BY 1`,
    [interval]);
  return rows.map((r) => periodStart(r.p, interval));
}

/** Parts of [lo, hi) that no existing partition covers. */
function gaps(lo: Date, hi: Date, parts: LogNode[]): [Date, Date][] {
  let pieces: [number, number][] = [[lo.getTime(), hi.getTime()]];
  for (const p of parts) {
    const a = p.from?.getTime() ?? -Infinity;
    const b = p.to?.getTime() ?? Infinity;
    pieces = pieces.flatMap(([x, y]): [number, number][] => {
      if (b <= x || a >= y) return [[x, y]];
      return [...(a > x ? [[x, a] as [number, number]] : []), ...(b < y ? [[b, y] as [number, number]] : [])];
    });
  }
  return pieces.map(([x, y]) => [new Date(x), new Date(y)]);
}

/**
 * Creates the partitions of the current period and `premake` periods ahead under every table
 * partitioned by time, and partitions for entries a default partition caught (moving them
 * there, ids and values unchanged). Runs in the caller's transaction.
 */
export async function ensurePartitions(
  client: ClientBase, schema: string, partitioning: NormalizedPartitioning, now: Date, log: (line: string) => void = () => undefined,
): Promise<{ created: string[]; moved: number }> {
  const tree = await readLogTree(client, schema);
  const created: string[] = [];
  let moved = 0;
  const { interval } = partitioning;
  for (const node of rangeNodes(tree)) {
    const children = childrenOf(tree, node.name);
    const parts = children.filter((c) => !c.isDefault);
    const fallback = children.find((c) => c.isDefault);
    const first = periodStart(now, interval);
    const periods = new Map<number, Date>();
    for (let k = 0; k <= partitioning.premake; k++) periods.set(addPeriods(first, interval, k).getTime(), addPeriods(first, interval, k));
    if (fallback) for (const p of await strayPeriods(client, schema, fallback.name, interval)) periods.set(p.getTime(), p);
    for (const p of [...periods.values()].sort((a, b) => a.getTime() - b.getTime())) {
      for (const [lo, hi] of gaps(p, addPeriods(p, interval, 1), parts)) {
        const name = partitionName(node.name, lo);
        const n = await createPartition(client, schema, node.name, fallback?.name, name, lo, hi);
        parts.push({ name, parent: node.name, kind: 'plain', isDefault: false, from: lo, to: hi, routes: [] });
        created.push(name);
        moved += n;
        log(`created partition ${qualifiedLog(schema, name)} for ${lo.toISOString()} to ${hi.toISOString()}${n > 0 ? `, moved ${n} entries into it from ${quoteIdent(fallback!.name)}` : ''}`);
      }
    }
  }
  return { created, moved };
}

async function createPartition(
  client: ClientBase, schema: string, parent: string, fallback: string | undefined, name: string, lo: Date, hi: Date,
): Promise<number> {
  const table = qualifiedLog(schema, name);
  const bound = `FOR VALUES FROM (${tsLiteral(lo)}) TO (${tsLiteral(hi)})`;
  const range = `ts >= ${tsLiteral(lo)} AND ts < ${tsLiteral(hi)}`;
  let moved = 0;
  const strays = fallback !== undefined
    && (await client.query(`SELECT 1 FROM ${qualifiedLog(schema, fallback)} WHERE ${range} LIMIT 1`)).rows.length > 0;
  if (strays) {
    // A partition cannot be created while the default holds entries of its range: build it
    // beside the log, move them in, then attach it.
    await client.query(`CREATE TABLE ${table} (LIKE ${qualifiedLog(schema, ROOT)} INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)`);
    await client.query(`ALTER TABLE ${table} ADD PRIMARY KEY (id)`);
    const r = await client.query(`WITH moved AS (DELETE FROM ${qualifiedLog(schema, fallback)} WHERE ${range} RETURNING *)
      INSERT INTO ${table} SELECT * FROM moved`);
    moved = r.rowCount ?? 0;
    // Proves the partition constraint, so ATTACH need not scan again.
    await client.query(`ALTER TABLE ${table} ADD CONSTRAINT pg_auditlog_bound CHECK (${range})`);
    await client.query(`ALTER TABLE ${qualifiedLog(schema, parent)} ATTACH PARTITION ${table} ${bound}`);
    await client.query(`ALTER TABLE ${table} DROP CONSTRAINT pg_auditlog_bound`);
  } else {
    await client.query(`CREATE TABLE ${table} PARTITION OF ${qualifiedLog(schema, parent)} ${bound}`);
    await client.query(`ALTER TABLE ${table} ADD PRIMARY KEY (id)`);
  }
  await secureLogTable(client, schema, name);
  return moved;
}

/** now minus the retention, in UTC calendar terms. */
export function retentionCutoff(now: Date, retention: NonNullable<NormalizedPartitioning['retention']>): Date {
  const d = new Date(now.getTime());
  if (retention.unit === 'day') d.setUTCDate(d.getUTCDate() - retention.amount);
  else if (retention.unit === 'week') d.setUTCDate(d.getUTCDate() - 7 * retention.amount);
  else if (retention.unit === 'month') d.setUTCMonth(d.getUTCMonth() - retention.amount);
  else d.setUTCFullYear(d.getUTCFullYear() - retention.amount);
  return d;
}

/** Time partitions (never a default) whose every entry is older than `before`. */
export function partitionsBefore(tree: LogTree, before: Date, under?: string): LogNode[] {
  const nodes = under === undefined ? rangeNodes(tree) : rangeNodes(tree).filter((n) => n.name === under);
  return nodes.flatMap((n) => childrenOf(tree, n.name))
    .filter((c) => !c.isDefault && c.kind === 'plain' && c.to !== null && c.to.getTime() <= before.getTime())
    .sort((a, b) => a.to!.getTime() - b.to!.getTime());
}

/**
 * Drops whole partitions, in the caller's transaction, and records each in dropped_range:
 * its range, how many entries it held, and (with tamper evidence) which seals that leaves
 * without an entry, so `verify` checks the chain from the oldest kept entry instead of
 * reporting retention as deletion. Returns the number of entries dropped.
 */
export async function dropPartitions(client: ClientBase, schema: string, tree: LogTree, drop: LogNode[], reason: string): Promise<number> {
  if (drop.length === 0) return 0;
  const s = quoteIdent(schema);
  const dropping = new Set(drop.map((d) => d.name));
  for (const d of drop) await client.query(`LOCK TABLE ${qualifiedLog(schema, d.name)} IN ACCESS EXCLUSIVE MODE`);
  const { rows: [sealing] } = await client.query<{ sealed_to: string | null }>(`SELECT max(to_txid)::text AS sealed_to FROM ${s}.seal_batch`);
  let retired: string | null = null;
  let straddleFrom = '0';
  if (sealing?.sealed_to) {
    // Every entry below the oldest kept transaction is gone: batches wholly below it retire.
    let oldestKept: string | null = null;
    for (const leaf of leavesOf(tree).filter((l) => !dropping.has(l.name))) {
      const { rows: [m] } = await client.query<{ m: string | null }>(`SELECT min(txid)::text AS m FROM ${qualifiedLog(schema, leaf.name)}`);
      if (m?.m && (oldestKept === null || BigInt(m.m) < BigInt(oldestKept))) oldestKept = m.m;
    }
    const { rows: [r] } = await client.query<{ batch: string | null; to_txid: string | null }>(
      `SELECT batch::text, to_txid::text FROM ${s}.seal_batch
       WHERE to_txid <= LEAST(coalesce($1::xid8, pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())),
                              pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()))
       ORDER BY batch DESC LIMIT 1`, [oldestKept]);
    retired = r?.batch ?? null;
    straddleFrom = r?.to_txid ?? '0';
  }
  let total = 0;
  for (const d of drop) {
    const table = qualifiedLog(schema, d.name);
    // Two queries, each with its index: the count reads an old (all-visible) partition's primary
    // key only; the sealed ids of the straddling batch come through the txid index.
    const { rows: [counted] } = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
    const { rows: [sealed] } = sealing?.sealed_to
      ? await client.query<{ ids: string[] }>(
        `SELECT coalesce(array_agg(id), '{}') AS ids FROM ${table} WHERE txid >= $2::xid8 AND txid < $1::xid8`,
        [sealing.sealed_to, straddleFrom])
      : { rows: [{ ids: [] as string[] }] };
    total += Number(counted!.n);
    await client.query(
      `INSERT INTO ${s}.dropped_range (reason, log_table, ts_from, ts_to, entries, retired_batch, ids)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [reason, d.name, d.from, d.to, counted!.n, retired, sealed!.ids]);
    await client.query(`DROP TABLE ${table}`);
  }
  if (retired !== null) await client.query(`DELETE FROM ${s}.entry_seal WHERE batch <= $1::bigint`, [retired]);
  // The removal itself is an entry of the log (sealed like any other).
  await client.query(`SELECT ${s}.append_event($1, NULL, NULL, NULL, NULL, $2::jsonb)`, [reason, JSON.stringify({
    partitions: drop.map((d) => d.name), from: drop[0]!.from, to: drop[drop.length - 1]!.to, entries: total,
  })]);
  return total;
}

/**
 * For flush: drops the time partitions wholly before `before` (of `table`'s own log when it
 * has one), in one transaction; flush then deletes only inside the boundary partition.
 */
export async function dropPartitionsBefore(db: Db, schema: string, before: string, table: QualifiedName | null): Promise<number> {
  // A plain log (the default): nothing to drop, and no transaction of our own either.
  const { rows: [root] } = await db.query<{ partitioned: boolean }>(
    `SELECT coalesce((SELECT relkind = 'p' FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass($1)), false) AS partitioned`,
    [qualifiedLog(schema, ROOT)]);
  if (!root?.partitioned) return 0;
  const client = isPool(db) ? await db.connect() : db;
  try {
    return await inTransaction(client, async () => {
      await lockAgainstInstall(client, schema);
      const tree = await readLogTree(client, schema);
      const { rows: [b] } = await client.query<{ t: Date }>('SELECT $1::timestamptz AS t', [before]);
      let under: string | undefined;
      if (table !== null) {
        // Only a log table holding nothing but this table's entries can lose whole partitions.
        const own = childrenOf(tree, ROOT).find((c) => c.routes.length === 1 && c.routes[0]!.schema === table.schema && c.routes[0]!.name === table.name);
        if (!own) return 0;
        under = own.name;
      }
      return dropPartitions(client, schema, tree, partitionsBefore(tree, b!.t, under), 'flush');
    });
  } finally {
    if (isPool(db)) (client as { release?: () => void }).release?.();
  }
}

/** Runs `auditlog maintain`: partitions ahead, strays moved, retention. See the file header. */
export async function maintain(client: ClientBase, configInput: AuditConfig | NormalizedConfig, options: MaintainOptions = {}): Promise<MaintainResult> {
  const config = normalize(configInput);
  const log = options.log ?? (() => undefined);
  const result: MaintainResult = { created: [], moved: 0, dropped: [], droppedEntries: 0, skipped: [] };
  const lockTimeout = options.lockTimeoutMs ?? 5000;
  await client.query('SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext($1))', [`pg-auditlog maintain ${config.schema}`]);
  try {
    const now = options.now ?? (await client.query<{ now: Date }>('SELECT now() AS now')).rows[0]!.now;
    const step = async (what: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await inTransaction(client, async () => {
          await lockAgainstInstall(client, config.schema);
          await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeout))}`);
          await fn();
        });
      } catch (err) {
        if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err;
        result.skipped.push(what);
        log(`${what}: the log was busy (lock not granted in ${lockTimeout} ms); the next run will do it`);
      }
    };
    const partitioning = config.partitioning;
    if (!partitioning) {
      await step('check', async () => {
        if (await dropStaleBound(client, config.schema)) log('removed the CHECK left by an unfinished conversion');
      });
      log('the config has no "partitioning": nothing to maintain');
      return result;
    }
    let toAnalyze: string[] = [];
    await step('create partitions', async () => {
      const made = await ensurePartitions(client, config.schema, partitioning, now, log);
      result.created.push(...made.created);
      result.moved += made.moved;
      toAnalyze = await ensureLookupStatistics(client, config.schema);
    });
    await analyzeLeaves(client, config.schema, toAnalyze, log);
    if (partitioning.retention) {
      const cutoff = retentionCutoff(now, partitioning.retention);
      const candidates = partitionsBefore(await readLogTree(client, config.schema), cutoff);
      for (const part of candidates) {
        await step(`drop ${part.name}`, async () => {
          const tree = await readLogTree(client, config.schema);
          const current = tree.get(part.name);
          if (!current) return; // dropped by someone else meanwhile
          const n = await dropPartitions(client, config.schema, tree, [current], 'retention');
          result.dropped.push(part.name);
          result.droppedEntries += n;
          log(`dropped ${qualifiedLog(config.schema, part.name)} (${n} entries, all before ${current.to!.toISOString()}; retention ${quoteLiteral(partitioning.retention!.text)})`);
        });
      }
    }
    return result;
  } finally {
    await client.query('SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext($1))', [`pg-auditlog maintain ${config.schema}`]);
  }
}
