// The forwarded body carries the digits PostgreSQL stored, like `auditlog history --json`.
import { entryBody } from '../src/forward/message';
import { parseExactJson } from '../src/json';
import type { LogEntry } from '../src/interfaces';

test('the body writes numbers a JavaScript number cannot hold as the stored digits', () => {
  const changes = parseExactJson('{"n": [null, 99999999999999999999.9999999999], "b": [1.0, -9223372036854775808], "i": [1, 2]}');
  const body = entryBody({ id: '7', changes } as unknown as LogEntry);
  expect(body).toBe('{"id":"7","changes":{"n":[null,99999999999999999999.9999999999],"b":[1.0,-9223372036854775808],"i":[1,2]}}');
});
