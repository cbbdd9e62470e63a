// Retention: delete old entries in batches, each its own short transaction (given a pool or
// an idle client), walking the primary key so no batch rescans what an earlier one removed.
//
// Partitioned by range of ts (config "partitioning"), entries wholly before the cutoff are
// removed by dropping partitions (instant, no dead rows; src/maintain) and this batch loop
// only handles the partition the cutoff falls in (and default or legacy partitions). Every
// removal is recorded in dropped_range, with the ids of deleted entries when tamper evidence
// is on, so verify tells retention from tampering.
import { dropPartitionsBefore } from '../maintain';
import type { FlushOptions, FlushResult } from '../interfaces';
import { invalid, parseInstant, parseTable, schemaOf, type Db } from './common';
import { logSystemEvent } from './events';

export const DEFAULT_BATCH_SIZE = 5000;

export async function flush(db: Db, options: FlushOptions = {}): Promise<FlushResult> {
  const schema = schemaOf(options);
  const before = options.beforeDate === undefined ? null : parseInstant(options.beforeDate, 'before date');
  const table = options.table === undefined ? null : parseTable(options.table);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) throw invalid('batchSize must be an integer from 1 to 100000');

  // Only the conditions that apply, so the planner sees plain index conditions.
  const filterValues: unknown[] = [];
  const conditions: string[] = [];
  if (before !== null) {
    filterValues.push(before);
    conditions.push(`ts < $${filterValues.length}::timestamptz`);
  }
  if (table !== null) {
    filterValues.push(table.name, table.schema);
    conditions.push(`table_name = $${filterValues.length - 1} AND table_schema = $${filterValues.length}`);
  }
  const filter = conditions.length > 0 ? conditions.join(' AND ') : 'true';
  const n = filterValues.length;
  const dropped = before !== null ? await dropPartitionsBefore(db, options.schema ?? 'auditlog', before, table) : 0;
  // The last entry to delete, found once: later batches stop there instead of scanning the
  // rest of the log for entries that are too new. With a date, "id + 0" makes PostgreSQL read
  // the old entries through BRIN(ts) rather than walk the primary key down from the newest.
  const { rows: [bound] } = await db.query<{ max: string | null }>(
    `SELECT max(${before !== null ? 'id + 0' : 'id'})::text AS max FROM ${schema}.log_entry WHERE ${filter}`, filterValues);
  let deleted = 0;
  let batches = 0;
  let after = '0';
  if (bound?.max) {
    for (;;) {
      const { rows: [r] } = await db.query<{ n: number; last: string | null }>(
        `WITH batch AS (
           SELECT id FROM ${schema}.log_entry
           WHERE id > $${n + 1}::bigint AND id <= $${n + 2}::bigint AND ${filter}
           ORDER BY id LIMIT $${n + 3}),
         -- An id array, not a join: always primary-key lookups, never a hash join over the log.
         gone AS (DELETE FROM ${schema}.log_entry WHERE id = ANY(ARRAY(SELECT id FROM batch)) RETURNING id),
         noted AS (INSERT INTO ${schema}.dropped_range (reason, ts_to, entries, ids)
                   SELECT 'flush', ${before !== null ? '$1::timestamptz' : 'NULL'}, count(*),
                          CASE WHEN (SELECT tamper_evidence FROM ${schema}.security_setting) THEN coalesce(array_agg(id), '{}') ELSE '{}' END
                   FROM gone HAVING count(*) > 0)
         SELECT (SELECT count(*)::int FROM gone) AS n, (SELECT max(id)::text FROM batch) AS last`,
        [...filterValues, after, bound.max, batchSize],
      );
      if (!r?.last) break;
      after = r.last;
      deleted += r.n;
      batches++;
      await options.progress?.(deleted);
    }
  }
  // Retention itself leaves a trace: who removed what, and when.
  await logSystemEvent(db, {
    schema: options.schema, action: 'flush', ...(options.table !== undefined ? { table: options.table } : {}),
    data: { beforeDate: options.beforeDate ?? null, deleted: deleted + dropped, ...(dropped > 0 ? { droppedWithPartitions: dropped } : {}) },
  });
  return { deleted: deleted + dropped, batches };
}
