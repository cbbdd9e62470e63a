// Role separation for the audit schema, applied at the end of every install (same transaction):
// who owns the log, what the application may do with it, who may switch capture off, and the
// row-level security and sealing index the config asks for.
import type { ClientBase } from 'pg';
import type { NormalizedConfig, NormalizedRoles } from '../config/validate';
import { COMMENT_PREFIX } from '../catalog';
import { AuditLogError, PG } from '../errors';
import { displayName, generatedName, quoteIdent, type QualifiedName } from '../ident';

export const TENANT_POLICY = 'auditlog_tenant_isolation';
const WRITER_POLICY = 'auditlog_writer_append';

/**
 * The role the capture functions run as (SECURITY DEFINER owner): it may append to the log and
 * nothing else, so code that runs inside capture can never rewrite the trail, its settings or
 * its seals. NOLOGIN, created by install; roles are cluster-wide, one serves every database.
 */
export const WRITER_ROLE = 'auditlog_writer';

/**
 * What capture calls, so what the writer may execute (signatures as regprocedure text). A new
 * helper called from capture code must be listed here, or capture fails with permission denied.
 */
const WRITER_FUNCTIONS = [
  'invoking_user()', 'try_inet(text)', 'try_jsonb(text)', 'capture_disabled(text, text)', 'bypass_allowed(text, text)',
  'notify_turn(text)', 'notify_entries(bigint, bigint, text, text, text)', 'events_channel(text)',
  'generic_capture(text, text, text, jsonb, jsonb)',
];

interface RoleFacts {
  name: string;
  exists: boolean;
  superuser: boolean;
  bypassRls: boolean;
}

async function roleFacts(client: ClientBase, name: string): Promise<RoleFacts> {
  const { rows } = await client.query<{ super: boolean; bypassrls: boolean }>(
    'SELECT rolsuper AS super, rolbypassrls AS bypassrls FROM pg_catalog.pg_roles WHERE rolname = $1', [name]);
  return { name, exists: rows.length > 0, superuser: rows[0]?.super ?? false, bypassRls: rows[0]?.bypassrls ?? false };
}

async function isMember(client: ClientBase, member: string, role: string): Promise<boolean> {
  const { rows } = await client.query<{ m: boolean }>(
    `SELECT pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER') AS m
     FROM pg_catalog.pg_roles r, pg_catalog.pg_roles g WHERE r.rolname = $1 AND g.rolname = $2`, [member, role]);
  return rows[0]?.m ?? false;
}

/** Audited tables whose owner the app role is (or is a member of): it could drop their triggers. */
async function tablesControlledBy(client: ClientBase, app: string, tables: QualifiedName[]): Promise<string[]> {
  if (tables.length === 0) return [];
  const { rows } = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
     FROM pg_catalog.pg_class c
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN unnest($2::text[], $3::text[]) AS t(schema, name) ON t.schema = n.nspname AND t.name = c.relname
     WHERE pg_catalog.pg_has_role($1::name, c.relowner, 'MEMBER')
     ORDER BY 1, 2`,
    [app, tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return rows.map((r) => displayName(r));
}

/**
 * Refuses a setup in which the app role could forge or erase its own trail. Throws UNSAFE_ROLES
 * listing every reason, before anything about roles is changed.
 */
async function checkRoles(client: ClientBase, config: NormalizedConfig, roles: NormalizedRoles, tables: QualifiedName[]): Promise<void> {
  if (roles.app === undefined) return;
  const problems: string[] = [];
  const app = await roleFacts(client, roles.app);
  if (!app.exists) {
    throw new AuditLogError('UNSAFE_ROLES', `app role "${roles.app}" does not exist: create the application's login role first (CREATE ROLE … LOGIN)`);
  }
  if (app.superuser) problems.push(`app role "${app.name}" is a superuser: it can do anything, including erase the log. Give the application an ordinary role`);
  if (config.tenantIsolation && app.bypassRls) {
    problems.push(`app role "${app.name}" has BYPASSRLS: tenantIsolation would not apply to it (ALTER ROLE ${quoteIdent(app.name)} NOBYPASSRLS)`);
  }
  if (roles.owner !== undefined) {
    if (roles.owner === roles.app) problems.push('the app role and the owner role must differ');
    else if (await isMember(client, roles.app, roles.owner)) {
      problems.push(`app role "${roles.app}" is a member of owner role "${roles.owner}": it could rewrite the log (REVOKE ${quoteIdent(roles.owner)} FROM ${quoteIdent(roles.app)})`);
    }
  }
  if (await isMember(client, roles.app, WRITER_ROLE)) {
    problems.push(`app role "${roles.app}" is a member of the writer role "${WRITER_ROLE}": it could append forged entries (REVOKE ${quoteIdent(WRITER_ROLE)} FROM ${quoteIdent(roles.app)})`);
  }
  const owned = await tablesControlledBy(client, roles.app, tables);
  if (owned.length > 0) {
    problems.push(`app role "${roles.app}" owns audited table(s) ${owned.join(', ')} (directly or through membership): ` +
      'an owner can drop or disable their audit triggers. Transfer them to a migration role ' +
      `(ALTER TABLE … OWNER TO your_migration_role) and GRANT SELECT, INSERT, UPDATE, DELETE to "${roles.app}"`);
  }
  if (problems.length > 0) {
    throw new AuditLogError('UNSAFE_ROLES', `unsafe role setup:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { problems });
  }
}

/**
 * CREATE ROLE … NOLOGIN for the owner and bypass roles that do not exist yet. Runs before the
 * install transaction, each in its own: roles are cluster-wide, a concurrent installer in
 * another database may create one first (that counts as success), and only a transaction that
 * starts after that commit is sure to see it. Lacking CREATEROLE is reported later, by
 * applySecurity, when it finds a role missing.
 */
export async function ensureRoles(client: ClientBase, roles: NormalizedRoles): Promise<void> {
  const concurrently = async (sql: string) => {
    try {
      await client.query(sql);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== PG.DUPLICATE_OBJECT && code !== PG.UNIQUE_VIOLATION && code !== PG.INSUFFICIENT_PRIVILEGE) throw err;
    }
  };
  for (const name of [roles.owner, roles.bypass, WRITER_ROLE]) {
    if (name === undefined || (await roleFacts(client, name)).exists) continue;
    await concurrently(`CREATE ROLE ${quoteIdent(name)} NOLOGIN`);
  }
  // Membership is cluster-wide too: the owner role joins the writer here, not in the install
  // transaction, where a concurrent installer in another database could make it fail.
  if (roles.owner !== undefined && (await roleFacts(client, roles.owner)).exists && (await roleFacts(client, WRITER_ROLE)).exists
      && !(await isMember(client, roles.owner, WRITER_ROLE))) {
    await concurrently(`GRANT ${quoteIdent(WRITER_ROLE)} TO ${quoteIdent(roles.owner)}`);
  }
}

/**
 * Every object of the audit schema goes to the schema's owner, except the capture functions
 * (generated ones, their DDL fallbacks, generic_capture), which go to `writer` when given.
 */
async function alignOwnership(client: ClientBase, schema: string, writer: string | null): Promise<void> {
  const { rows } = await client.query<{ stmt: string; owner: string }>(
    `WITH s AS (SELECT oid, nspowner, pg_catalog.pg_get_userbyid(nspowner) AS owner FROM pg_catalog.pg_namespace WHERE nspname = $1)
     SELECT 'ALTER TABLE ' || c.oid::pg_catalog.regclass::text AS stmt, s.owner
     FROM pg_catalog.pg_class c, s
     WHERE c.relnamespace = s.oid AND c.relkind IN ('r', 'p') AND c.relowner <> s.nspowner
     UNION ALL
     SELECT 'ALTER SEQUENCE ' || c.oid::pg_catalog.regclass::text, s.owner
     FROM pg_catalog.pg_class c, s
     WHERE c.relnamespace = s.oid AND c.relkind = 'S' AND c.relowner <> s.nspowner
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d  -- owned by a table: follows it
                       WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
                         AND d.deptype IN ('a', 'i'))
     UNION ALL
     SELECT 'ALTER FUNCTION ' || f.oid::pg_catalog.regprocedure::text, f.target
     FROM (SELECT p.oid, p.proowner,
                  CASE WHEN $2::text IS NOT NULL
                        AND (pg_catalog.obj_description(p.oid, 'pg_proc') LIKE $3 OR p.proname = 'generic_capture')
                       THEN $2::text ELSE s.owner END AS target
           FROM pg_catalog.pg_proc p, s WHERE p.pronamespace = s.oid) f
     WHERE f.proowner <> (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = f.target)`,
    [schema, writer, `${COMMENT_PREFIX}%`],
  );
  for (const r of rows) await client.query(`${r.stmt} OWNER TO ${quoteIdent(r.owner)}`);
}

/**
 * The writer role, when it exists and the installer may hand functions to it (a superuser):
 * refuses one that could do more than append (a superuser, or a member of the owner role).
 */
async function usableWriter(client: ClientBase, schema: string, log: (line: string) => void): Promise<string | null> {
  const writer = await roleFacts(client, WRITER_ROLE);
  const { rows: [me] } = await client.query<{ superuser: boolean; owner: string }>(
    `SELECT r.rolsuper AS superuser, pg_catalog.pg_get_userbyid(n.nspowner) AS owner
     FROM pg_catalog.pg_roles r, pg_catalog.pg_namespace n WHERE r.rolname = current_user AND n.nspname = $1`, [schema]);
  if (!writer.exists || !me?.superuser) {
    log(`note: capture functions run as the audit schema's owner: ${writer.exists ? 'only a superuser installer may hand them to' : 'could not create'} the append-only role "${WRITER_ROLE}"`);
    return null;
  }
  if (writer.superuser || await isMember(client, WRITER_ROLE, me.owner)) {
    throw new AuditLogError('UNSAFE_ROLES', `writer role "${WRITER_ROLE}" ${writer.superuser ? 'is a superuser' : `is a member of the audit owner "${me.owner}"`}: ` +
      `capture runs as it and must only append to the log. ALTER ROLE ${quoteIdent(WRITER_ROLE)} NOSUPERUSER, or REVOKE ${quoteIdent(me.owner)} FROM ${quoteIdent(WRITER_ROLE)}`);
  }
  return WRITER_ROLE;
}

/** What the writer may do: append entries (INSERT, the id sequence), read the installed plans, run the capture helpers. */
async function grantWriter(client: ClientBase, schema: string, writer: string): Promise<void> {
  const s = quoteIdent(schema);
  const w = quoteIdent(writer);
  const { rows: [owner] } = await client.query<{ owner: string }>(
    'SELECT pg_catalog.pg_get_userbyid(nspowner) AS owner FROM pg_catalog.pg_namespace WHERE nspname = $1', [schema]);
  // The DDL watch (running as the owner) replaces writer-owned capture functions: it must be a member.
  // (A superuser owner is a member of every role already.)
  if (!(await isMember(client, owner!.owner, writer))) await client.query(`GRANT ${w} TO ${quoteIdent(owner!.owner)}`);
  await client.query(`REVOKE ALL ON SCHEMA ${s} FROM ${w}`);
  await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM ${w}`);
  await client.query(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${s} FROM ${w}`);
  await client.query(`GRANT USAGE ON SCHEMA ${s} TO ${w}`);
  await client.query(`GRANT INSERT ON ${s}.log_entry TO ${w}`);
  await client.query(`GRANT SELECT ON ${s}.tracked_table TO ${w}`);
  // TRUNCATE in a partition tree: the first trigger of a subtree marks the partitions it logged
  // (truncate_cover), and a partition's TRUNCATE logs the rows it removes, read from the
  // partition itself (TRUNCATE has no transition table).
  await client.query(`GRANT SELECT, INSERT, DELETE ON ${s}.truncate_cover TO ${w}`);
  const { rows: partitions } = await client.query<{ rel: string; schema: string }>(
    `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS rel, pg_catalog.quote_ident(n.nspname) AS schema
     FROM ${s}.tracked_table tt
     CROSS JOIN LATERAL pg_catalog.pg_partition_tree(tt.table_oid) part
     JOIN pg_catalog.pg_class c ON c.oid = part.relid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE part.parentrelid IS NOT NULL`);
  for (const schema of new Set(partitions.map((p) => p.schema))) await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${w}`);
  for (const { rel } of partitions) await client.query(`GRANT SELECT ON ${rel} TO ${w}`);
  const { rows: [seq] } = await client.query<{ seq: string }>('SELECT pg_catalog.pg_get_serial_sequence($1, $2) AS seq', [`${s}.log_entry`, 'id']);
  await client.query(`GRANT USAGE ON SEQUENCE ${seq!.seq} TO ${w}`);  // lastval() for the notification
  for (const fn of WRITER_FUNCTIONS) await client.query(`GRANT EXECUTE ON FUNCTION ${s}.${fn} TO ${w}`);
  // Row-level security (tenantIsolation) applies to the writer, which does not own the log.
  await client.query(`DROP POLICY IF EXISTS ${quoteIdent(WRITER_POLICY)} ON ${s}.log_entry`);
  await client.query(`CREATE POLICY ${quoteIdent(WRITER_POLICY)} ON ${s}.log_entry FOR INSERT TO ${w} WITH CHECK (true)`);
}

/**
 * Applies roles, grants, the bypass role, sealing and tenant isolation for `config`. Runs inside
 * the install transaction, after the migrations and the capture functions.
 */
export async function applySecurity(
  client: ClientBase, config: NormalizedConfig, roles: NormalizedRoles, tables: QualifiedName[], log: (line: string) => void,
): Promise<void> {
  const schema = quoteIdent(config.schema);
  const logTable = `${schema}.log_entry`;
  await checkRoles(client, config, roles, tables);

  if (roles.owner !== undefined) {
    if (!(await roleFacts(client, roles.owner)).exists) {
      throw new AuditLogError('UNSAFE_ROLES', `owner role "${roles.owner}" does not exist and this installer may not create roles: CREATE ROLE ${quoteIdent(roles.owner)} NOLOGIN first`);
    }
    await client.query(`ALTER SCHEMA ${schema} OWNER TO ${quoteIdent(roles.owner)}`);
  }
  const writer = await usableWriter(client, config.schema, log);
  await alignOwnership(client, config.schema, writer);

  if ((await roleFacts(client, roles.bypass)).exists) {
    await client.query(`UPDATE ${schema}.security_setting SET bypass_role = $1, tamper_evidence = $2`, [roles.bypass, config.tamperEvidence]);
  } else {
    await client.query(`UPDATE ${schema}.security_setting SET bypass_role = NULL, tamper_evidence = $1`, [config.tamperEvidence]);
    log(`could not create bypass role "${roles.bypass}" (no CREATEROLE): capture cannot be switched off until a DBA runs CREATE ROLE ${quoteIdent(roles.bypass)} NOLOGIN and installs again`);
  }

  // Nothing in the audit schema is for everyone: capture runs as the writer role or the owner
  // (SECURITY DEFINER), so roles writing audited tables need no privilege at all here. EXECUTE is PostgreSQL's default for PUBLIC.
  await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM PUBLIC`);
  await client.query(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${schema} FROM PUBLIC`);
  await client.query(`REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ${schema} FROM PUBLIC`);
  if (config.schema !== 'public') await client.query(`REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC`);
  if (writer !== null) await grantWriter(client, config.schema, writer);
  if (roles.app !== undefined) {
    const app = quoteIdent(roles.app);
    await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM ${app}`);
    await client.query(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${schema} FROM ${app}`);
    await client.query(`REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ${schema} FROM ${app}`);
    await client.query(`REVOKE ALL ON SCHEMA ${schema} FROM ${app}`);
    if (roles.appReadsLog) {
      await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${app}`);
      await client.query(`GRANT SELECT ON ${logTable} TO ${app}`);
      // What the history functions read besides the log: the installed plans (display names,
      // masks, column order, key types) and the key renderer that lookups share with capture.
      await client.query(`GRANT SELECT ON ${schema}.tracked_table TO ${app}`);
      await client.query(`GRANT EXECUTE ON FUNCTION ${schema}.pk_text(jsonb) TO ${app}`);
    }
    // Manual events (logEvent: access, export, login): log_event runs as the owner, refuses the
    // verbs pg-auditlog writes itself and takes the context from the caller's transaction.
    await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${app}`);
    await client.query(`GRANT EXECUTE ON FUNCTION ${schema}.log_event(text, text, text, jsonb, text, jsonb) TO ${app}`);
    if (await isMember(client, roles.app, roles.bypass)) {
      log(`note: app role "${roles.app}" is a member of bypass role "${roles.bypass}" and can switch capture off`);
    }
  }

  await watchCaptureDdl(client, config.schema, log);

  // Sealing reads the log by transaction id through log_entry_txid_idx (txid, id), which the
  // events migration creates for subscribers anyway.

  // Every table of a partitioned log gets the same policy: reads through log_entry use the
  // parent's, but a role granted one partition directly (a per-table log) reads it with its own.
  for (const table of [logTable, ...(await logPartitions(client, config.schema))]) {
    await applyTenantPolicy(client, table, config.tenantIsolation);
  }
}

/** The partitions (at every level) of the audit schema's log_entry, quoted. */
async function logPartitions(client: ClientBase, schema: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS name
     FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass($1)) t
     JOIN pg_catalog.pg_class c ON c.oid = t.relid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE t.level > 0 ORDER BY t.level, c.relname`,
    [`${quoteIdent(schema)}.log_entry`]);
  return rows.map((r) => r.name);
}

async function applyTenantPolicy(client: ClientBase, table: string, on: boolean): Promise<void> {
  await client.query(`DROP POLICY IF EXISTS ${quoteIdent(TENANT_POLICY)} ON ${table}`);
  if (on) {
    // Parsed now and stored as a tree: no search_path can redirect it later. No tenant set
    // means NULL, which matches no row: a reader without a tenant sees nothing.
    await client.query(`CREATE POLICY ${quoteIdent(TENANT_POLICY)} ON ${table} FOR SELECT
      USING (tenant_id = NULLIF(pg_catalog.current_setting('auditlog.tenant', true), ''))`);
    await client.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
  } else {
    await client.query(`ALTER TABLE ${table} DISABLE ROW LEVEL SECURITY`);
  }
}

/**
 * A log table created after install (a partition made by `auditlog maintain`): owned by the
 * audit schema's owner like the rest, readable by nobody directly, and under the tenant
 * policy when log_entry has it.
 */
export async function secureLogTable(client: ClientBase, schema: string, name: string): Promise<void> {
  const table = `${quoteIdent(schema)}.${quoteIdent(name)}`;
  const { rows: [facts] } = await client.query<{ owner: string; table_owner: string; rls: boolean }>(
    `SELECT pg_catalog.pg_get_userbyid(n.nspowner) AS owner, pg_catalog.pg_get_userbyid(c.relowner) AS table_owner,
            (SELECT r.relrowsecurity FROM pg_catalog.pg_class r WHERE r.oid = pg_catalog.to_regclass($2)) AS rls
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = pg_catalog.to_regclass($1)`,
    [table, `${quoteIdent(schema)}.log_entry`]);
  if (!facts) return;
  if (facts.owner !== facts.table_owner) await client.query(`ALTER TABLE ${table} OWNER TO ${quoteIdent(facts.owner)}`);
  await client.query(`REVOKE ALL ON ${table} FROM PUBLIC`);
  if (facts.rls) await applyTenantPolicy(client, table, true);
}

/**
 * Event triggers that record dropped or disabled audit triggers as 'ddl' entries (see
 * record_capture_ddl in sql/4_security.sql). Only a superuser may create event triggers; other
 * installers get a note and verify does not expect them.
 */
async function watchCaptureDdl(client: ClientBase, schema: string, log: (line: string) => void): Promise<void> {
  const fn = `${quoteIdent(schema)}.record_capture_ddl()`;
  const { rows: [me] } = await client.query<{ superuser: boolean }>(
    'SELECT rolsuper AS superuser FROM pg_catalog.pg_roles WHERE rolname = current_user');
  if (!me?.superuser) {
    log('note: not a superuser, so no event trigger records dropped or disabled audit triggers; status and verify still report them');
    return;
  }
  const triggers = [
    { name: generatedName('auditlog_ddl_drop', schema, schema), on: 'sql_drop', when: '' },
    { name: generatedName('auditlog_ddl_alter', schema, schema), on: 'ddl_command_end', when: ` WHEN TAG IN ('ALTER TABLE')` },
  ];
  for (const t of triggers) {
    const { rows } = await client.query('SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = $1', [t.name]);
    if (rows.length === 0) {
      await client.query(`CREATE EVENT TRIGGER ${quoteIdent(t.name)} ON ${t.on}${t.when} EXECUTE FUNCTION ${fn}`);
    } else {
      await client.query(`ALTER EVENT TRIGGER ${quoteIdent(t.name)} ENABLE`);
    }
  }
  await client.query(`UPDATE ${quoteIdent(schema)}.security_setting SET ddl_watch = true`);
}
