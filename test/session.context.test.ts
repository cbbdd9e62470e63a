// The audit context is stored exactly as given or refused with CONTEXT_INVALID, naming the
// key and why: nothing is silently replaced (U+FFFD), dropped (NULL) or reshaped (a Date as a
// string, a Map as {}).
import { withAuditSession } from '../src';
import { ExactNumber } from '../src/json';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('session_context');
  await db.sql('CREATE TABLE t_row (id int PRIMARY KEY); CREATE TABLE t_statement (id int PRIMARY KEY)');
  await db.install({ tables: { 'public.t_row': { mode: 'row' }, 'public.t_statement': { mode: 'statement' } } });
});

afterAll(() => db.drop());

async function refused(context: Record<string, unknown>): Promise<{ code?: string; message: string; problems: string[] }> {
  const err = await withAuditSession(db.pool, context, async () => 'ran').then(() => null, (e: unknown) => e);
  expect(err).not.toBeNull();
  return err as { code?: string; message: string; problems: string[] };
}

test.each([
  [{ actor: 'x\uD800y' }, /actor contains a lone surrogate \(U\+D800 at index 1\)/],
  [{ cid: '\uDC00' }, /cid contains a lone surrogate/],
  [{ remoteAddr: 'fe80::1%eth0' }, /remoteAddr "fe80::1%eth0" has a zone index/],
  [{ data: new Date(0) }, /data must be a plain object, not a Date object/],
  [{ data: { at: new Date(0) } }, /data\.at is a Date object, which JSON would not store as given/],
  [{ data: new Map([[1, 2]]) }, /data must be a plain object, not a Map object/],
  [{ data: { m: new Map([[1, 2]]), s: new Set([1]) } }, /data\.m is a Map object.*data\.s is a Set object/],
  [{ data: { toJSON() { return undefined; } } }, /data\.toJSON is a function/],
  [{ data: { n: NaN, list: [1, undefined] } }, /data\.n is NaN.*data\.list\[1\] is undefined/],
  [{ data: { 'k\uD800': 1, v: 'a\u0000' } }, /data has a key that contains a lone surrogate.*data\.v contains a NUL/],
])('refuses %p with CONTEXT_INVALID naming the key and why', async (context, message) => {
  const err = await refused(context);
  expect(err.code).toBe('CONTEXT_INVALID');
  expect(err.message).toMatch(message);
});

test('a circular data object is refused, not a TypeError', async () => {
  const data: Record<string, unknown> = {};
  data.self = data;
  expect(await refused({ data })).toMatchObject({ code: 'CONTEXT_INVALID', message: expect.stringMatching(/data\.self refers back to itself/) });
});

test.each(['row', 'statement'])('%s capture: accepted context is stored exactly, big numbers with their digits', async (mode) => {
  await withAuditSession(db.pool, {
    actor: 'émile 😀', remoteAddr: 'fe80::1', data: { n: 12345678901234567890n, x: new ExactNumber('1.10'), nested: { ok: [true, null, 'a'] } },
  }, async (c) => { await c.query(`INSERT INTO t_${mode} VALUES (1)`); });
  const [row] = await db.sql(`SELECT actor, host(remote_addr) AS addr, additional_data::text AS data FROM auditlog.log_entry WHERE table_name = $1`, [`t_${mode}`]);
  expect(row).toEqual({ actor: 'émile 😀', addr: 'fe80::1', data: '{"n": 12345678901234567890, "x": 1.10, "nested": {"ok": [true, null, "a"]}}' });
});
