// Baseline: one `baseline` entry per existing row of an audited table that has no entry yet,
// so time travel knows the state of rows older than the log (pgMemento's initial audit,
// django-simple-history's populate_history). Batches in primary key order, each its own short
// transaction; a second run writes nothing for rows that have a baseline or any other entry.
import type { ClientBase } from 'pg';
import type { TablePlan } from '../config/resolve';
import { inTransaction, isPool } from '../db';
import { AuditLogError, PG } from '../errors';
import { baselineBatchSql } from '../generate';
import { displayName, quoteIdent } from '../ident';
import type { BaselineOptions, BaselineResult } from '../interfaces';
import { explainMissingSchema, invalid, parseTable, schemaOf, type Db } from './common';

export const DEFAULT_BASELINE_BATCH = 1000;

export async function baseline(db: Db, options: BaselineOptions = {}): Promise<BaselineResult> {
  const schema = schemaOf(options);
  const batchSize = options.batchSize ?? DEFAULT_BASELINE_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) throw invalid('batchSize must be an integer from 1 to 100000');
  const only = options.table === undefined ? null : parseTable(options.table);
  const log = options.log ?? (() => undefined);
  const client = isPool(db) ? await db.connect() : db;
  try {
    const plans = await readPlans(client, schema, only, options.schema ?? 'auditlog');
    const result: BaselineResult = { tables: [], recorded: 0 };
    for (const plan of plans) {
      const name = displayName(plan.table);
      let scanned = 0;
      let recorded = 0;
      let last: string | null = null;
      for (;;) {
        const sql = baselineBatchSql(options.schema ?? 'auditlog', plan, last === null);
        const params: unknown[] = last === null ? [batchSize] : [batchSize, last];
        // Serialises baselines of one table, so two runs cannot both record a row.
        const lockKey = `pg-auditlog baseline ${options.schema ?? 'auditlog'} ${name}`;
        const { rows: [r] } = await inTransaction(client, async () => {
          await client.query('SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))', [lockKey]);
          return client.query<{ scanned: number; recorded: number; last: string | null }>(sql, params);
        }).catch((err: unknown) => {
          if ((err as { code?: string }).code === PG.UNDEFINED_TABLE && !String((err as Error).message).includes('log_entry')) {
            throw new AuditLogError('NOT_FOUND', `${name} is audited but does not exist any more: run auditlog install --prune`, { cause: err });
          }
          throw explainMissingSchema(err, options.schema ?? 'auditlog');
        });
        scanned += r!.scanned;
        recorded += r!.recorded;
        if (r!.scanned > 0) log(`${name}: ${scanned} row(s) read, ${recorded} baseline entr${recorded === 1 ? 'y' : 'ies'} recorded`);
        if (r!.scanned < batchSize || r!.last === null) break;
        last = r!.last;
      }
      if (scanned === 0) log(`${name}: no rows`);
      result.tables.push({ table: name, scanned, recorded });
      result.recorded += recorded;
    }
    return result;
  } finally {
    if (isPool(db)) (client as ClientBase & { release(): void }).release();
  }
}

/** The installed plans (tracked_table.config) of every audited table, or of `only`. */
async function readPlans(client: ClientBase, schema: string, only: { schema: string; name: string } | null, schemaName: string): Promise<TablePlan[]> {
  const { rows } = await client.query<{ config: TablePlan | null; table_schema: string; table_name: string }>(
    `SELECT table_schema, table_name, config FROM ${schema}.tracked_table
     WHERE $1::text IS NULL OR (table_schema = $1 AND table_name = $2)
     ORDER BY table_schema, table_name`,
    [only?.schema ?? null, only?.name ?? null],
  ).catch((err: unknown) => {
    if ((err as { code?: string }).code === PG.UNDEFINED_TABLE) {
      throw new AuditLogError('NOT_FOUND', `audit schema ${quoteIdent(schemaName)} is not installed: run auditlog install`, { cause: err });
    }
    throw err;
  });
  if (only && rows.length === 0) {
    throw new AuditLogError('NOT_FOUND', `${displayName(only)} is not audited by schema ${quoteIdent(schemaName)}: add it to the config and run auditlog install`);
  }
  return rows.filter((r) => r.config?.columns && r.config.primaryKey?.length).map((r) => r.config!);
}
