// The viewer in a real browser: Debian's Chromium driven by playwright-core (no browser
// download). List, filter by actor through the form, an entry's diff, the object's history,
// a live entry arriving, pause, reconnecting; HTML/JS payloads in the log never execute.
// UPDATE_SCREENSHOTS=1 also writes docs/images/viewer-list.png and viewer-entry.png.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { serveViewer, withAuditSession } from '../src';
import type { ViewerServer } from '../src/interfaces';
import { createTestDatabase, type TestDatabase } from './helpers';
import { seedViewerData } from './viewer-helpers';

jest.setTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'browser-test-token-0123456789';
const XSS_COLUMN = '<img src=x onerror="window.__xss=(window.__xss||0)+1">';
const XSS = {
  actor: '<script>window.__xss=(window.__xss||0)+1</script>',
  cid: '"><svg onload="window.__xss=(window.__xss||0)+1">',
  value: '</pre><img src=x onerror="alert(1)">',
};

let db: TestDatabase;
let server: ViewerServer;
let browser: Browser;
let page: Page;
let shots: string;
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)`);
  db = await createTestDatabase('viewer_browser');
  await seedViewerData(db);
  await db.sql(`CREATE TABLE hostile (id int PRIMARY KEY, "${XSS_COLUMN.replace(/"/g, '""')}" text, note text)`);
  await db.install({
    tables: {
      'public.users': { mask: ['ssn'], mapping: { email: 'E-mail address' }, objectRepr: 'email' },
      'public.order_items': {},
      'public.hostile': { objectRepr: 'note', mapping: { note: '<b onmouseover="alert(2)">Note</b>' } },
    },
  });
  server = await serveViewer({ pool: db.pool, port: 0, token: TOKEN, log: () => undefined });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); void d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource|ERR_/.test(m.text())) problems.push(`console: ${m.text()}`); });
  shots = mkdtempSync(path.join(os.tmpdir(), 'viewer-shots-'));
});

afterAll(async () => {
  await browser?.close();
  await server?.close().catch(() => undefined);
  await db?.drop();
  rmSync(shots, { recursive: true, force: true });
});

const url = (p: string) => new URL(p, server.url).toString();

async function screenshot(name: string): Promise<void> {
  const file = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(__dirname, '..', 'docs', 'images', name) : path.join(shots, name);
  await page.screenshot({ path: file, fullPage: true });
  expect(statSync(file).size).toBeGreaterThan(10_000);
}

async function noXss(): Promise<void> {
  expect(await page.evaluate('window.__xss')).toBeUndefined();
  expect(problems).toEqual([]);
}

test('the token opens the list once; the cookie carries it, the address bar does not', async () => {
  await page.goto(url(`/?token=${TOKEN}`));
  expect(new URL(page.url()).search).toBe('');
  await expect(page.locator('tbody#entries tr').count()).resolves.toBe(6);
  await page.locator('#live[data-state="live"]').waitFor();
  await screenshot('viewer-list.png');
  await noXss();
});

test('filter by actor through the form, then by clicking a correlation id', async () => {
  await page.goto(url('/'));
  await page.fill('input[name="actor"]', 'bob');
  await page.click('form.filters button[type="submit"]');
  await page.waitForURL(/actor=bob/);
  expect(new URL(page.url()).search).toBe('?actor=bob'); // empty fields left out
  const actors = await page.locator('tbody#entries td.c-actor').allTextContents();
  expect(actors.length).toBe(2);
  expect(actors.every((a) => a.trim() === 'bob')).toBe(true);
  await page.locator('td.c-cid a', { hasText: 'req-2' }).first().click();
  await page.waitForURL(/cid=req-2/);
  expect(await page.locator('tbody#entries tr').count()).toBe(2);
});

test('open an entry and see its diff; then the object\'s history and its state at that entry', async () => {
  await page.goto(url('/?table=users&action=update'));
  await page.locator('a.entry-link').first().click();
  await page.waitForURL(/\/entries\/\d+$/);
  const diff = page.locator('table.diff');
  await expect(diff.locator('th[scope=row]').allTextContents()).resolves.toEqual(
    expect.arrayContaining([expect.stringContaining('E-mail address'), 'ssn', 'balance']));
  const email = diff.locator('tr', { hasText: 'E-mail address' });
  expect((await email.locator('td').allTextContents()).map((t) => t.trim())).toEqual(['"ann@example.com"', '"ann@example.org"']);
  expect((await diff.locator('tr', { hasText: 'balance' }).locator('td').allTextContents()).map((t) => t.trim()))
    .toEqual(['99999999999999999999.9999999999', '1.0']);
  expect(await diff.locator('tr', { hasText: 'ssn' }).locator('.badge.masked').count()).toBe(2);
  expect(await page.locator('dl.context').textContent()).toContain('req-2');
  await screenshot('viewer-entry.png');

  await page.click('text=Object history');
  await page.waitForURL(/\/objects\/public\.users\/1$/);
  expect(await page.locator('tbody#entries tr').count()).toBe(2);
  expect(await page.locator('table.state').textContent()).toContain('ann@example.org');
  await page.goBack();
  await page.click('text=State at this entry');
  await page.waitForURL(/at=/);
  expect(await page.locator('table.state').textContent()).toContain('ann@example.org');
  await noXss();
});

test('keyboard: / focuses the search, j moves to an entry, Enter opens it', async () => {
  await page.goto(url('/'));
  await page.keyboard.press('/');
  expect(await page.evaluate('document.activeElement && document.activeElement.getAttribute("name")')).toBe('q');
  await page.keyboard.press('Escape');
  await page.locator('h1').click();
  await page.keyboard.press('j');
  expect(await page.evaluate('document.activeElement && document.activeElement.className')).toBe('entry-link');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/entries\/\d+$/);
});

test('a live entry arrives without reload; pause holds it back; the page says when it reconnects', async () => {
  await page.goto(url('/'));
  await page.locator('#live[data-state="live"]').waitFor();
  const insert = async (email: string) => {
    await withAuditSession(db.pool, { actor: 'live-writer' }, (c) => c.query('INSERT INTO users (email) VALUES ($1)', [email]));
    return (await db.entries(`object_repr = $1`, [email]))[0]!.id;
  };
  const first = await insert('live-1@example.com');
  await page.locator(`tbody#entries tr[data-id="${first}"]`).waitFor({ timeout: 10_000 });
  expect(await page.locator('tbody#entries tr').first().getAttribute('data-id')).toBe(first);

  await page.click('#live-toggle');
  expect(await page.textContent('#live-toggle')).toBe('Resume');
  const second = await insert('live-2@example.com');
  await page.locator('#live-status', { hasText: '1 new' }).waitFor({ timeout: 10_000 });
  expect(await page.locator(`tr[data-id="${second}"]`).count()).toBe(0);
  await page.click('#live-toggle');
  await page.locator(`tbody#entries tr[data-id="${second}"]`).waitFor();

  await server.close(); // the stream ends; EventSource tries again
  await page.locator('#live[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
  expect(await page.textContent('#live-status')).toBe('Reconnecting…');
  server = await serveViewer({ pool: db.pool, port: new URL(server.url).port ? Number(new URL(server.url).port) : 0, token: TOKEN, log: () => undefined });
  await page.locator('#live[data-state="live"]').waitFor({ timeout: 15_000 });
});

test('HTML and JavaScript in actors, correlation ids, values and column names never execute', async () => {
  await withAuditSession(db.pool, { actor: XSS.actor, cid: XSS.cid, data: { html: XSS.value } }, (c) =>
    c.query(`INSERT INTO hostile VALUES (1, $1, $2)`, [XSS.value, XSS.value]));
  const [hostile] = await db.entries(`table_name = 'hostile'`);
  for (const p of ['/', `/entries/${hostile!.id}`, '/objects/public.hostile/1', `/?actor=${encodeURIComponent(XSS.actor)}`]) {
    await page.goto(url(p));
    await page.waitForLoadState('load');
    await page.mouse.move(200, 300);
    await noXss();
  }
  // Shown as text, exactly.
  await page.goto(url(`/entries/${hostile!.id}`));
  const text = await page.locator('main').textContent();
  for (const payload of [XSS.actor, XSS.cid, XSS_COLUMN, '<b onmouseover="alert(2)">Note</b>']) expect(text).toContain(payload);
  expect(await page.locator('main img, main svg, main script, main b').count()).toBe(0);
});

test('readable on a narrow screen and in dark mode', async () => {
  const narrow = await browser.newPage({ viewport: { width: 390, height: 800 }, colorScheme: 'dark' });
  try {
    await narrow.goto(url(`/?token=${TOKEN}`));
    const overflow = await narrow.evaluate('document.documentElement.scrollWidth - window.innerWidth') as number;
    expect(overflow).toBeLessThanOrEqual(1);
    const bg = await narrow.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(bg).toBe('rgb(19, 20, 23)');
  } finally {
    await narrow.close();
  }
});
