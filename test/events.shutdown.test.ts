// At least once across shutdown: a named subscriber's cursor moves only past entries its hook
// has handled. A hook that never succeeds, closed mid-retry, must leave its entries for the next
// process that starts under the same name.
import { subscribe } from '../src';
import type { LogEntry, Subscription } from '../src/interfaces';
import { createTestDatabase, type TestDatabase, waitFor } from './helpers';

let db: TestDatabase;
const open: Subscription[] = [];

beforeAll(async () => {
  db = await createTestDatabase('events_shutdown');
  await db.sql('CREATE TABLE jobs (id serial PRIMARY KEY, what text)');
  await db.install({ tables: { 'public.jobs': {} } });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

afterAll(() => db.drop());

const options = (name: string) => ({
  connectionString: db.url, name, tables: ['jobs'], pollIntervalMs: 100,
  retry: { minDelayMs: 20, maxDelayMs: 40 }, log: () => undefined,
});

test('a named subscriber whose hook always throws, closed and restarted with a working hook, still gets the entry', async () => {
  let attempts = 0;
  const failing = await subscribe(options('always-throws'), async () => {
    attempts++;
    await new Promise((r) => setTimeout(r, 5)); // the hook is still running when the cursor could be stored
    throw new Error('downstream unavailable');
  });
  failing.on('error', () => undefined);
  open.push(failing);
  await db.sql(`INSERT INTO jobs (what) VALUES ('must arrive')`);
  await waitFor('several failed attempts', () => attempts >= 3);
  await failing.close();

  const seen: LogEntry[] = [];
  const working = await subscribe(options('always-throws'), (entries) => { seen.push(...entries); });
  open.push(working);
  await waitFor('the entry after the restart', () => seen.length >= 1);
  expect(seen.map((e) => [e.action, (e.changes as any).what[1]])).toEqual([['insert', 'must arrive']]);
});

test('restarting while the hook keeps failing, again and again, never loses the entry', async () => {
  for (let round = 0; round < 3; round++) {
    let attempts = 0;
    const failing = await subscribe(options('fails-thrice'), () => { attempts++; throw new Error(`round ${round}`); });
    failing.on('error', () => undefined);
    open.push(failing);
    if (round === 0) await db.sql(`INSERT INTO jobs (what) VALUES ('still here')`);
    await waitFor(`an attempt in round ${round}`, () => attempts >= 1);
    await failing.close();
  }
  const seen: LogEntry[] = [];
  open.push(await subscribe(options('fails-thrice'), (entries) => { seen.push(...entries); }));
  const values = () => seen.map((e) => (e.changes as any).what[1]);
  await waitFor('the entry', () => values().includes('still here'));
  expect(values()).toContain('still here');
});
