// Subject names of forwarded entries: one NATS token per part, reversible, whatever the name.
import fc from 'fast-check';
import { covers, entrySubject, escapeSubjectToken, publishedSubjects, unescapeSubjectToken } from '../src/forward/subject';

const TOKEN = /^[A-Za-z0-9_-]+$/;

test.each([
  ['users', 'users'],
  ['order_items', 'order_items'],
  ['my.table', 'my-2Etable'],
  ['a b', 'a-20b'],
  ['star*', 'star-2A'],
  ['gt>', 'gt-3E'],
  ['dash-name', 'dash-2Dname'],
  ['naïve', 'na-C3-AFve'],
  ['表', '-E8-A1-A8'],
  ['😀', '-F0-9F-98-80'],
  ['"quoted"', '-22quoted-22'],
])('escapes %j as the token %j, and back', (name, token) => {
  expect(escapeSubjectToken(name)).toBe(token);
  expect(unescapeSubjectToken(token)).toBe(name);
});

test('a NULL part (an entry with no table) is the lone token "-", which no name escapes to', () => {
  expect(escapeSubjectToken(null)).toBe('-');
  expect(unescapeSubjectToken('-')).toBeNull();
  expect(entrySubject({ table_schema: null, table_name: null, action: 'login' })).toBe('auditlog.-.-.login');
});

test('the subject has exactly four tokens for names with dots, spaces, unicode, * and >', () => {
  const subject = entrySubject({ table_schema: 'my schema.x', table_name: 'naïve.*>', action: 'insert' });
  expect(subject).toBe('auditlog.my-20schema-2Ex.na-C3-AFve-2E-2A-3E.insert');
  expect(subject.split('.')).toHaveLength(4);
});

test('escaping is reversible and yields a valid token for any string (property)', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 63 }), (name) => {
    const token = escapeSubjectToken(name);
    expect(token).toMatch(TOKEN);
    expect(unescapeSubjectToken(token)).toBe(name);
  }), { numRuns: 2000 });
});

test('different names never share a token (property)', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
    fc.pre(a !== b);
    expect(escapeSubjectToken(a)).not.toBe(escapeSubjectToken(b));
  }), { numRuns: 2000 });
});

test.each(['my.table', 'a-2', 'a-2e', 'a-zz', 'a b', '-C3'])('rejects %j, which no name escapes to', (token) => {
  expect(() => unescapeSubjectToken(token)).toThrow(/not (an escaped subject token|the canonical escape)/);
});

test('stream subjects: which filters cover the published subjects', () => {
  const all = publishedSubjects(null)[0]!;
  expect(all).toBe('auditlog.*.*.*');
  for (const f of ['auditlog.>', '>', 'auditlog.*.*.*', '*.>', '*.*.*.*']) expect(covers(f, all)).toBe(true);
  for (const f of ['auditlog.public.>', 'auditlog.*.*', 'auditlog.*.*.*.*', 'other.>', 'auditlog.*.*.insert']) expect(covers(f, all)).toBe(false);
  const [users] = publishedSubjects([{ schema: 'public', name: 'my.users' }]);
  expect(users).toBe('auditlog.public.my-2Eusers.*');
  expect(covers('auditlog.public.>', users!)).toBe(true);
  expect(covers('auditlog.public.my-2Eusers.*', users!)).toBe(true);
  expect(covers('auditlog.other.>', users!)).toBe(false);
});
