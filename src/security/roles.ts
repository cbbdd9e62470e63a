// Role separation for the audit schema, applied at the end of every install (same transaction):
// who owns the log, what the application may do with it, who may switch capture off, and the
// row-level security and sealing index the config asks for.
import type { ClientBase } from 'pg';
import type { NormalizedConfig, NormalizedRoles } from '../config/validate';
import { AuditLogError, PG } from '../errors';
import { displayName, generatedName, quoteIdent, type QualifiedName } from '../ident';

export const TENANT_POLICY = 'auditlog_tenant_isolation';

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
  for (const name of [roles.owner, roles.bypass]) {
    if (name === undefined || (await roleFacts(client, name)).exists) continue;
    try {
      await client.query(`CREATE ROLE ${quoteIdent(name)} NOLOGIN`);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== PG.DUPLICATE_OBJECT && code !== PG.UNIQUE_VIOLATION && code !== PG.INSUFFICIENT_PRIVILEGE) throw err;
    }
  }
}

/** Every object of the audit schema goes to the schema's owner, so generated functions run as it. */
async function alignOwnership(client: ClientBase, schema: string): Promise<void> {
  const { rows } = await client.query<{ stmt: string }>(
    `WITH s AS (SELECT oid, nspowner FROM pg_catalog.pg_namespace WHERE nspname = $1)
     SELECT 'ALTER TABLE ' || c.oid::pg_catalog.regclass::text AS stmt
     FROM pg_catalog.pg_class c, s
     WHERE c.relnamespace = s.oid AND c.relkind IN ('r', 'p') AND c.relowner <> s.nspowner
     UNION ALL
     SELECT 'ALTER SEQUENCE ' || c.oid::pg_catalog.regclass::text
     FROM pg_catalog.pg_class c, s
     WHERE c.relnamespace = s.oid AND c.relkind = 'S' AND c.relowner <> s.nspowner
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d  -- owned by a table: follows it
                       WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
                         AND d.deptype IN ('a', 'i'))
     UNION ALL
     SELECT 'ALTER FUNCTION ' || p.oid::pg_catalog.regprocedure::text
     FROM pg_catalog.pg_proc p, s
     WHERE p.pronamespace = s.oid AND p.proowner <> s.nspowner`,
    [schema],
  );
  if (rows.length === 0) return;
  const { rows: owner } = await client.query<{ owner: string }>(
    'SELECT pg_catalog.pg_get_userbyid(nspowner) AS owner FROM pg_catalog.pg_namespace WHERE nspname = $1', [schema]);
  for (const r of rows) await client.query(`${r.stmt} OWNER TO ${quoteIdent(owner[0]!.owner)}`);
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
  await alignOwnership(client, config.schema);

  if ((await roleFacts(client, roles.bypass)).exists) {
    await client.query(`UPDATE ${schema}.security_setting SET bypass_role = $1, tamper_evidence = $2`, [roles.bypass, config.tamperEvidence]);
  } else {
    await client.query(`UPDATE ${schema}.security_setting SET bypass_role = NULL, tamper_evidence = $1`, [config.tamperEvidence]);
    log(`could not create bypass role "${roles.bypass}" (no CREATEROLE): capture cannot be switched off until a DBA runs CREATE ROLE ${quoteIdent(roles.bypass)} NOLOGIN and installs again`);
  }

  // Nothing in the audit schema is for everyone: capture runs as the owner (SECURITY DEFINER),
  // so writers need no privilege at all here. EXECUTE is PostgreSQL's default for PUBLIC.
  await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM PUBLIC`);
  await client.query(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${schema} FROM PUBLIC`);
  await client.query(`REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ${schema} FROM PUBLIC`);
  if (config.schema !== 'public') await client.query(`REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC`);
  if (roles.app !== undefined) {
    const app = quoteIdent(roles.app);
    await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM ${app}`);
    await client.query(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${schema} FROM ${app}`);
    await client.query(`REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ${schema} FROM ${app}`);
    await client.query(`REVOKE ALL ON SCHEMA ${schema} FROM ${app}`);
    if (roles.appReadsLog) {
      await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${app}`);
      await client.query(`GRANT SELECT ON ${logTable} TO ${app}`);
    }
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
