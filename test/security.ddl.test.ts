// The owner of an audited table (a DBA or migration role, not a superuser) can drop or disable
// its triggers. It cannot do so silently: each change becomes a 'ddl' entry, and status and
// verify report the gap.
import { install, status } from '../src/install';
import { verify } from '../src/security/verify';
import { createTestDatabase, type TestDatabase } from './helpers';
import { asRole, createLoginRole, dropRoles, roleName, sqlState } from './security-helpers';

let db: TestDatabase;
let dba: string;
let owner: string;
let bypass: string;
const config = { tables: { 'public.ledger': {} }, tamperEvidence: true };
const configWithRoles = () => ({ ...config, roles: { owner, bypass } });

beforeAll(async () => {
  db = await createTestDatabase('sec_ddl');
  dba = roleName(db, 'dba');
  owner = roleName(db, 'owner');
  bypass = roleName(db, 'bypass');
  await createLoginRole(dba);
  await db.sql(`CREATE TABLE ledger (id int PRIMARY KEY, amount int); ALTER TABLE ledger OWNER TO "${dba}"`);
});

beforeEach(async () => {
  await db.install(configWithRoles());
  await db.sql('TRUNCATE auditlog.log_entry, auditlog.entry_seal, auditlog.seal_batch');
});

afterAll(async () => {
  await db.drop();
  await dropRoles([dba, owner, bypass]);
});

async function captureTrigger(): Promise<string> {
  // The INSERT capture trigger (statement mode, the default, has one trigger per action).
  const [{ tgname }] = await db.sql(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'ledger'::regclass AND tgname LIKE 'auditlog\\_insert%'`);
  return tgname;
}

const tableState = async () => (await db.withClient((c) => status(c, configWithRoles()))).tables[0]!.state;

test('disabling the audit triggers is recorded with who did it, and status reports it', async () => {
  await asRole(db, dba, (c) => c.query('ALTER TABLE ledger DISABLE TRIGGER ALL'));
  const entries = await db.entries();
  // One entry per disabled audit trigger: insert, update, delete and truncate.
  expect(entries.map((e) => [e.action, e.table_name, e.db_user, (e.additional_data as any).event])).toEqual(
    Array.from({ length: 4 }, () => ['ddl', 'ledger', dba, 'disabled']));
  expect(await tableState()).toBe('outdated');
});

test('ENABLE REPLICA TRIGGER, which silences it for normal writes, counts as disabled', async () => {
  const trigger = await captureTrigger();
  await asRole(db, dba, async (c) => {
    await c.query(`ALTER TABLE ledger ENABLE REPLICA TRIGGER "${trigger}"`);
    await c.query('INSERT INTO ledger VALUES (1, 10)'); // not captured: that is the point
  });
  expect((await db.entries()).map((e) => [e.action, (e.additional_data as any).state])).toEqual([['ddl', 'R']]);
  expect(await tableState()).toBe('outdated');
});

test('dropping an audit trigger is recorded, and verify fails until install restores it', async () => {
  const trigger = await captureTrigger();
  await asRole(db, dba, (c) => c.query(`DROP TRIGGER "${trigger}" ON ledger`));
  expect((await db.entries()).map((e) => [e.action, e.db_user, (e.additional_data as any).event, (e.additional_data as any).object])).toEqual([
    ['ddl', dba, 'dropped', `${trigger} on public.ledger`],
  ]);
  const report = await db.withClient((c) => verify(c, config));
  expect(report).toMatchObject({ intact: false, problems: [], status: { drift: true } });
  await db.install(configWithRoles());
  expect(await tableState()).toBe('installed');
});

test('the DDL watch itself is beyond the table owner; a superuser disabling it is reported by verify', async () => {
  const [{ evtname }] = await db.sql(`SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'auditlog\\_ddl\\_alter%'`);
  await asRole(db, dba, async (c) => {
    expect(await sqlState(c, `ALTER EVENT TRIGGER "${evtname}" DISABLE`)).toBe('42501');
    expect(await sqlState(c, `DROP EVENT TRIGGER "${evtname}"`)).toBe('42501');
  });
  await db.sql(`ALTER EVENT TRIGGER "${evtname}" DISABLE`);
  const report = await db.withClient((c) => verify(c, config));
  expect(report.intact).toBe(false);
  expect(report.problems).toEqual([expect.objectContaining({ problem: expect.stringContaining(`event trigger ${evtname} is disabled`) })]);
  await db.withClient((c) => install(c, configWithRoles()));
  expect((await db.withClient((c) => verify(c, config))).problems).toEqual([]);
});
