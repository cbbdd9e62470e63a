// pg-listen stops for good when LISTEN fails after a reconnect (it emits "error" and gives up).
// The subscriber must then replace the whole listener. pg-listen is wrapped, not faked: the
// instances are real, the test only gets hold of them to inject that failure.
import type { Subscriber } from 'pg-listen';
import { subscribe } from '../src';
import type { LogEntry } from '../src/interfaces';
import { createTestDatabase, type TestDatabase, waitFor } from './helpers';

const instances: Subscriber[] = [];
jest.mock('pg-listen', () => {
  const actual = jest.requireActual('pg-listen');
  return {
    __esModule: true,
    default: (...args: unknown[]) => {
      const instance = actual.default(...args);
      instances.push(instance);
      return instance;
    },
  };
});

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('events_listener');
  await db.sql('CREATE TABLE things (id serial PRIMARY KEY, v int)');
  await db.install({ tables: { 'public.things': {} } });
});

afterAll(() => db.drop());

test('when pg-listen gives up after a failed re-LISTEN, a new listener takes over and wakes the subscriber', async () => {
  const seen: LogEntry[] = [];
  const lines: string[] = [];
  const errors: string[] = [];
  // No polling to fall back on within the test: only a working LISTEN delivers quickly.
  const sub = await subscribe({ connectionString: db.url, pollIntervalMs: 600_000, log: (l) => lines.push(l), retry: { minDelayMs: 10, maxDelayMs: 50 } },
    (entries) => { seen.push(...entries); });
  sub.on('error', (err) => errors.push(`${err.code}: ${err.message}`));
  try {
    await db.sql('INSERT INTO things (v) VALUES (1)');
    await waitFor('the first entry', () => seen.length === 1);

    expect(instances).toHaveLength(1);
    instances[0]!.events.emit('error', new Error('Re-initializing the PostgreSQL notification client after connection loss failed: boom'));
    await waitFor('the replacement listener', () => lines.some((l) => /LISTEN connection restored/.test(l)));
    expect(instances).toHaveLength(2);
    expect(errors).toEqual([expect.stringMatching(/^LISTENER_FAILED: LISTEN connection failed: Re-initializing .* boom; starting a new one$/)]);

    await db.sql('INSERT INTO things (v) VALUES (2)');
    await waitFor('the entry after the replacement', () => seen.length === 2, 5_000);
    // The replaced listener was closed (its backend may take a moment to go away).
    const listeners = async () => (await db.sql(`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'pg-auditlog tail listen'`))[0].n as number;
    const until = Date.now() + 5_000;
    while ((await listeners()) !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await listeners()).toBe(1);
  } finally {
    await sub.close();
  }
});
