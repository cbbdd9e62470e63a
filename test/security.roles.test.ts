// Role separation, attacked as the application: it may write audited tables, and nothing it
// can do erases, forges or silences its own trail.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { install } from '../src/install';
import { describeEntries, getForObject, logEvent, stateAt } from '../src/history';
import { WRITER_ROLE } from '../src/security/roles';
import { createTestDatabase, type TestDatabase } from './helpers';
import { asRole, createLoginRole, dropRoles, roleName, runCli, sqlState } from './security-helpers';

let db: TestDatabase;
let app: string;
let owner: string;
let bypass: string;
let dir: string;
const INSUFFICIENT_PRIVILEGE = '42501';
const config = { tables: { 'public.accounts': {} } };

beforeAll(async () => {
  db = await createTestDatabase('sec_roles');
  app = roleName(db, 'app');
  owner = roleName(db, 'owner');
  bypass = roleName(db, 'bypass');
  await createLoginRole(app);
  await db.sql(`
    CREATE TABLE accounts (id serial PRIMARY KEY, name text, balance int);
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON accounts TO "${app}";
    GRANT USAGE ON SEQUENCE accounts_id_seq TO "${app}";
    CREATE SCHEMA evil AUTHORIZATION "${app}";
  `);
  dir = mkdtempSync(path.join(os.tmpdir(), 'auditlog-roles-'));
  writeFileSync(path.join(dir, 'auditlog.config.json'), JSON.stringify({ ...config, roles: { bypass } }));
  // The way users run it: the CLI, roles from flags.
  const res = await runCli(['install', '--app-role', app, '--owner-role', owner], dir, { DATABASE_URL: db.url });
  if (res.code !== 0) throw new Error(`install failed: ${res.stderr}`);
});

afterAll(async () => {
  await db.drop();
  await dropRoles([app, owner, bypass]);
});

beforeEach(() => db.sql('TRUNCATE auditlog.log_entry'));

test('the owner role owns the audit schema and its tables; the append-only writer role owns the SECURITY DEFINER capture functions', async () => {
  const [schema] = await db.sql(`SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'auditlog'`);
  expect(schema.owner).toBe(owner);
  const tables = await db.sql(`SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relnamespace = 'auditlog'::regnamespace`);
  expect(tables).toEqual([{ owner }]);
  const fns = await db.sql(`SELECT proname, pg_get_userbyid(proowner) AS owner, prosecdef, proconfig FROM pg_proc
                            WHERE pronamespace = 'auditlog'::regnamespace AND proname LIKE 'capture\\_%' AND prorettype = 'trigger'::regtype`);
  expect(fns).toEqual([expect.objectContaining({ owner: WRITER_ROLE, prosecdef: true, proconfig: expect.arrayContaining(['search_path=pg_catalog, pg_temp']) })]);
  const [role] = await db.sql(`SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, [owner]);
  expect(role.rolcanlogin).toBe(false);
});

test('the app writes audited tables and its writes are logged under its name; it may read the log', async () => {
  await asRole(db, app, async (c) => {
    await c.query(`INSERT INTO accounts (name, balance) VALUES ('alice', 10)`);
    await c.query(`UPDATE accounts SET balance = 20`);
    const { rows } = await c.query('SELECT action, db_user FROM auditlog.log_entry ORDER BY id');
    expect(rows).toEqual([{ action: 'insert', db_user: app }, { action: 'update', db_user: app }]);
  });
});

test('the app reads history, time travel and display names, and records manual events, with the log access it was given', async () => {
  await asRole(db, app, async (c) => {
    await c.query(`INSERT INTO accounts (name, balance) VALUES ('carol', 5) RETURNING id`);
    const [{ id }] = (await c.query(`SELECT id FROM accounts WHERE name = 'carol'`)).rows;
    const page = await getForObject(c, 'public.accounts', id);
    expect(page.entries.map((e) => e.action)).toEqual(['insert']);
    expect(await stateAt(c, 'public.accounts', id, new Date(Date.now() + 60_000))).toMatchObject({ name: 'carol', balance: 5 });
    expect((await describeEntries(c, page.entries))[0]!.fields.map((f) => f.field)).toEqual(['id', 'name', 'balance']);
    const eventId = await logEvent(c, { action: 'export', table: 'public.accounts', objectPk: id, data: { rows: 1 } });
    expect(eventId).toMatch(/^\d+$/);
    await c.query(`DELETE FROM accounts WHERE name = 'carol'`);
  });
});

test('the app cannot INSERT, UPDATE, DELETE or TRUNCATE any audit table', async () => {
  await db.sql(`INSERT INTO accounts (name) VALUES ('bob')`);
  await asRole(db, app, async (c) => {
    const attempts = [
      `INSERT INTO auditlog.log_entry (action, db_user) VALUES ('insert', 'someone-else')`,
      `UPDATE auditlog.log_entry SET actor = 'framed'`,
      `DELETE FROM auditlog.log_entry`,
      'TRUNCATE auditlog.log_entry',
      `UPDATE auditlog.security_setting SET bypass_role = '${app}'`,
      'DELETE FROM auditlog.tracked_table',
      'DELETE FROM auditlog.entry_seal',
      'TRUNCATE auditlog.seal_batch',
    ];
    for (const sql of attempts) expect([sql, await sqlState(c, sql)]).toEqual([sql, INSUFFICIENT_PRIVILEGE]);
  });
  expect(await db.entries()).toHaveLength(1);
});

test('the app cannot drop, disable or sidestep the audit triggers, nor plant its own', async () => {
  const [{ tgname }] = await db.sql(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'accounts'::regclass AND NOT tgisinternal LIMIT 1`);
  const [{ fn }] = await db.sql(`SELECT tgfoid::regprocedure::text AS fn FROM pg_trigger WHERE tgname = $1`, [tgname]);
  await asRole(db, app, async (c) => {
    const attempts = [
      `DROP TRIGGER "${tgname}" ON accounts`,
      `ALTER TABLE accounts DISABLE TRIGGER "${tgname}"`,
      'ALTER TABLE accounts DISABLE TRIGGER ALL',
      `DROP FUNCTION ${fn}`,
      // Replica mode skips ordinary triggers: superuser only.
      'SET session_replication_role = replica',
      // A BEFORE trigger on the log could rewrite or swallow entries.
      `CREATE TRIGGER t BEFORE INSERT ON auditlog.log_entry FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()`,
      'ALTER TABLE auditlog.log_entry DISABLE ROW LEVEL SECURITY',
      `CREATE FUNCTION auditlog.capture_disabled(a text, b text, c text) RETURNS boolean LANGUAGE sql AS 'SELECT true'`,
      `SET ROLE "${owner}"`,
      // Helpers run only inside the capture; called directly they could forge bypass entries.
      `SELECT auditlog.bypass_allowed('public', 'accounts')`,
      'SELECT auditlog.seal()',
    ];
    for (const sql of attempts) expect([sql, await sqlState(c, sql)]).toEqual([sql, INSUFFICIENT_PRIVILEGE]);
    await c.query(`INSERT INTO accounts (name) VALUES ('still audited')`);
  });
  const [{ n }] = await db.sql(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'accounts'::regclass AND tgenabled <> 'D' AND NOT tgisinternal`);
  expect(n).toBe(4); // insert, update, delete, truncate (statement mode)
  expect((await db.entries()).map((e) => e.object_repr ?? e.action)).toEqual(['insert']);
});

test('functions, tables and operators planted in the app search_path do not hijack the capture', async () => {
  await asRole(db, app, async (c) => {
    await c.query(`
      CREATE TABLE evil.pwned (what text);
      CREATE TABLE evil.log_entry (LIKE auditlog.log_entry);
      CREATE TEMP TABLE log_entry (LIKE auditlog.log_entry);
      CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE sql
        AS $$ INSERT INTO evil.pwned VALUES ('current_setting ' || $1) RETURNING 'forged' $$;
      CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql
        AS $$ INSERT INTO evil.pwned VALUES ('lower') RETURNING 'forged' $$;
      CREATE FUNCTION evil.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE sql
        AS $$ INSERT INTO evil.pwned VALUES ('pg_has_role') RETURNING true $$;
      CREATE FUNCTION evil.jsonb_eq(jsonb, jsonb) RETURNS boolean LANGUAGE sql
        AS $$ INSERT INTO evil.pwned VALUES ('=') RETURNING true $$;
      -- Would make every diff look empty, so an update would leave no entry.
      CREATE OPERATOR evil.= (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.jsonb_eq);
      CREATE FUNCTION evil.int4eq(int, int) RETURNS boolean LANGUAGE sql
        AS $$ INSERT INTO evil.pwned VALUES ('int =') RETURNING true $$;
      CREATE OPERATOR evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = evil.int4eq);
    `);
    await c.query('SET search_path = evil, pg_temp, pg_catalog, public');
    await c.query('BEGIN');
    await c.query(`SELECT pg_catalog.set_config('auditlog.actor', 'real-actor', true), pg_catalog.set_config('auditlog.disable', 'on', true)`);
    await c.query(`INSERT INTO public.accounts (name, balance) VALUES ('carol', 1)`);
    await c.query(`UPDATE public.accounts SET balance = 2 WHERE name = 'carol'`);
    await c.query('COMMIT');
    expect((await c.query('SELECT what FROM evil.pwned')).rows).toEqual([]);
    expect((await c.query('SELECT count(*)::int AS n FROM evil.log_entry')).rows[0].n).toBe(0);
    expect((await c.query('SELECT count(*)::int AS n FROM pg_temp.log_entry')).rows[0].n).toBe(0);
  });
  const entries = await db.entries();
  expect(entries.map((e) => [e.action, e.actor, e.db_user])).toEqual([
    ['bypass_refused', 'real-actor', app], ['insert', 'real-actor', app], ['update', 'real-actor', app],
  ]);
  expect(entries[2]!.changes).toEqual({ balance: [1, 2] });
});

test('with log access "none" the app cannot read the log; capture still works', async () => {
  await db.withClient((c) => install(c, config, { roles: { app, owner, bypass, appReadsLog: false } }));
  try {
    await asRole(db, app, async (c) => {
      await c.query(`INSERT INTO accounts (name) VALUES ('dave')`);
      expect(await sqlState(c, 'SELECT * FROM auditlog.log_entry')).toBe(INSUFFICIENT_PRIVILEGE);
    });
    expect(await db.entries()).toHaveLength(1);
  } finally {
    await db.withClient((c) => install(c, config, { roles: { app, owner, bypass } }));
  }
});

test('install refuses an app role that owns an audited table, or is the owner role, and changes nothing', async () => {
  await db.sql(`CREATE TABLE app_owned (id int PRIMARY KEY); ALTER TABLE app_owned OWNER TO "${app}"`);
  const attempt = (roles: object, tables: Record<string, object>) =>
    db.withClient((c) => install(c, { tables }, { roles: { bypass, ...roles } }));
  await expect(attempt({ app, owner }, { ...config.tables, 'public.app_owned': {} })).rejects.toMatchObject({
    code: 'UNSAFE_ROLES', message: expect.stringContaining('owns audited table(s) public.app_owned'),
  });
  await expect(attempt({ app, owner: app }, config.tables)).rejects.toMatchObject({
    code: 'UNSAFE_ROLES', message: expect.stringContaining('must differ'),
  });
  await expect(attempt({ app: roleName(db, 'nobody'), owner }, config.tables)).rejects.toMatchObject({
    code: 'UNSAFE_ROLES', message: expect.stringContaining('does not exist'),
  });
  const su = roleName(db, 'su');
  const rls = roleName(db, 'rls');
  await db.sql(`CREATE ROLE "${su}" SUPERUSER NOLOGIN; CREATE ROLE "${rls}" BYPASSRLS NOLOGIN`);
  try {
    await expect(attempt({ app: su, owner }, config.tables)).rejects.toMatchObject({
      code: 'UNSAFE_ROLES', message: expect.stringContaining('is a superuser'),
    });
    await expect(db.withClient((c) => install(c, { ...config, tenantIsolation: true }, { roles: { app: rls, owner, bypass } })))
      .rejects.toMatchObject({ code: 'UNSAFE_ROLES', message: expect.stringContaining('has BYPASSRLS') });
  } finally {
    await dropRoles([su, rls]);
  }
  const [{ n }] = await db.sql(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'app_owned'::regclass`);
  expect(n).toBe(0);
});
