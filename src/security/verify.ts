// Tamper evidence: seal committed entries into the hash chain (sql/4_security.sql) and check
// the log against it. Writers never wait for either; see docs/security.md (Tamper evidence) for the guarantee.
import type { ClientBase } from 'pg';
import { validateConfig, type NormalizedConfig } from '../config/validate';
import { AuditLogError } from '../errors';
import { quoteIdent } from '../ident';
import type { AuditConfig, VerifyOptions, VerifyProblem, VerifyReport } from '../interfaces';
import { status } from '../install';

function normalize(config: AuditConfig | NormalizedConfig): NormalizedConfig {
  return Array.isArray((config as NormalizedConfig).tables) ? (config as NormalizedConfig) : validateConfig(config);
}

async function requireSealing(client: ClientBase, config: NormalizedConfig): Promise<void> {
  if (!config.tamperEvidence) {
    throw new AuditLogError('TAMPER_EVIDENCE_DISABLED', 'tamper evidence is off: set "tamperEvidence": true in the config and run auditlog install');
  }
  const table = `${quoteIdent(config.schema)}.security_setting`;
  const { rows: [found] } = await client.query<{ present: boolean }>('SELECT pg_catalog.to_regclass($1) IS NOT NULL AS present', [table]);
  const rows = found?.present ? (await client.query<{ on: boolean }>(`SELECT tamper_evidence AS on FROM ${table}`)).rows : [];
  if (rows[0]?.on !== true) {
    throw new AuditLogError('TAMPER_EVIDENCE_DISABLED', `the database has not enabled tamper evidence for schema "${config.schema}" yet: run auditlog install`);
  }
}

/** Seals the entries of every transaction that ended since the last seal; returns how many. */
export async function seal(client: ClientBase, configInput: AuditConfig | NormalizedConfig): Promise<number> {
  const config = normalize(configInput);
  await requireSealing(client, config);
  const { rows } = await client.query<{ n: string }>(`SELECT ${quoteIdent(config.schema)}.seal() AS n`);
  return Number(rows[0]!.n);
}

/** "batch:hexdigest" → its parts, or a clear error. */
function parseAnchor(anchor: string): { batch: string; digest: string } {
  const m = /^(\d+):([0-9a-f]{64})$/i.exec(anchor.trim());
  if (!m) throw new AuditLogError('CONFIG_INVALID', `anchor "${anchor}" is not batch:hexdigest as printed by auditlog verify (e.g. 12:9f86d0…)`);
  return { batch: m[1]!, digest: m[2]!.toLowerCase() };
}

/**
 * Seals (unless `seal: false`), then checks every sealed entry against its seal, the chain of
 * batches, the optional external anchor, and the capture triggers (`status`). Read-only
 * apart from sealing; the checks run in one repeatable-read snapshot.
 */
export async function verify(client: ClientBase, configInput: AuditConfig | NormalizedConfig, options: VerifyOptions = {}): Promise<VerifyReport> {
  const config = normalize(configInput);
  const anchor = options.anchor !== undefined ? parseAnchor(options.anchor) : undefined;
  const sealedNow = options.seal === false ? 0 : await seal(client, config);
  await requireSealing(client, config);
  const schema = quoteIdent(config.schema);

  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const { rows } = await client.query<{ entry_id: string | null; batch: string | null; problem: string }>(
      `SELECT entry_id, batch, problem FROM ${schema}.verify_seals() ORDER BY entry_id NULLS LAST, batch`);
    const problems: VerifyProblem[] = rows.map((r) => ({ entryId: r.entry_id, batch: r.batch, problem: r.problem }));
    const { rows: [totals] } = await client.query<{ total: string; head: string | null; dropped: string | null }>(
      `SELECT (SELECT count(*) FROM ${schema}.entry_seal) AS total,
              (SELECT sum(entries) FROM ${schema}.dropped_range) AS dropped,
              (SELECT batch || ':' || pg_catalog.encode(digest, 'hex') FROM ${schema}.seal_batch ORDER BY batch DESC LIMIT 1) AS head`);
    if (anchor) {
      const { rows: found } = await client.query<{ digest: string }>(
        `SELECT pg_catalog.encode(digest, 'hex') AS digest FROM ${schema}.seal_batch WHERE batch = $1`, [anchor.batch]);
      if (found[0]?.digest !== anchor.digest) {
        problems.push({
          entryId: null, batch: anchor.batch,
          problem: found.length === 0
            ? `anchor: batch ${anchor.batch} is missing from the chain: seals were removed or rewritten`
            : `anchor: batch ${anchor.batch} has digest ${found[0]!.digest}, not the recorded ${anchor.digest}: the chain was rewritten`,
        });
      }
    }
    problems.push(...await ddlWatchProblems(client, config.schema));
    const report = await status(client, config);
    await client.query('COMMIT');
    return {
      droppedEntries: Number(totals!.dropped ?? 0),
      sealedNow,
      sealedTotal: Number(totals!.total),
      head: totals!.head,
      problems,
      status: report,
      intact: problems.length === 0 && !report.drift,
    };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** When install set up the DDL watch, its two event triggers must still exist and be enabled. */
async function ddlWatchProblems(client: ClientBase, schema: string): Promise<VerifyProblem[]> {
  const { rows: [setting] } = await client.query<{ ddl_watch: boolean }>(`SELECT ddl_watch FROM ${quoteIdent(schema)}.security_setting`);
  if (!setting?.ddl_watch) return [];
  const { rows } = await client.query<{ evtname: string; enabled: boolean }>(
    `SELECT evtname, evtenabled <> 'D' AS enabled FROM pg_catalog.pg_event_trigger
     WHERE evtfoid = pg_catalog.to_regprocedure($1)`, [`${quoteIdent(schema)}.record_capture_ddl()`]);
  const problems: VerifyProblem[] = rows.filter((r) => !r.enabled).map((r) => ({
    entryId: null, batch: null, problem: `ddl watch: event trigger ${r.evtname} is disabled (a superuser did it): run auditlog install`,
  }));
  if (rows.length < 2) {
    problems.push({ entryId: null, batch: null, problem: 'ddl watch: an event trigger was dropped (a superuser did it): run auditlog install' });
  }
  return problems;
}
