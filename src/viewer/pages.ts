// The pages: a layout, the entry list, one entry with its diff, one object's timeline and its
// state at an instant. Pure functions of what the routes read; every value goes through `html`
// (escaped) and, when it is a value from the log, through toJson (lossless numbers).
import { isUnknownState } from '../history';
import type { DisplayEntry, FieldChangeDisplay, UnknownState } from '../interfaces';
import { html, join, type Html } from './html';
import { MASK } from '../generate';
import { toJson } from './json';

export type Params = Record<string, string | undefined>;

/** Filters of the list, as they appear in the URL query. */
export const FILTER_KEYS = ['table', 'action', 'actor', 'cid', 'txid', 'since', 'until', 'q'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];
export type Filters = Partial<Record<FilterKey, string>>;

/** base path + path + query (empty values left out). */
export function href(base: string, path: string, params: Params = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const text = q.toString();
  return `${base}${path}${text === '' ? '' : `?${text}`}`;
}

export function tableName(e: { table_schema: string | null; table_name: string | null }): string | null {
  if (e.table_name === null) return null;
  return e.table_schema === null || e.table_schema === 'public' ? e.table_name : `${e.table_schema}.${e.table_name}`;
}

/** Table as the URL carries it: "schema.table" with SQL quoting where a part needs it. */
export function tableParam(e: { table_schema: string | null; table_name: string | null }): string | null {
  if (e.table_name === null) return null;
  const part = (p: string) => (/^[a-z_][a-z0-9_$]*$/.test(p) ? p : `"${p.replace(/"/g, '""')}"`);
  return `${part(e.table_schema ?? 'public')}.${part(e.table_name)}`;
}

export function objectHref(base: string, e: DisplayEntry, params: Params = {}): string | null {
  const table = tableParam(e);
  if (table === null || e.object_pk === null) return null;
  return href(base, `/objects/${encodeURIComponent(table)}/${encodeURIComponent(e.object_pk)}`, params);
}

function time(ts: Date | string): Html {
  const d = ts instanceof Date ? ts : new Date(ts);
  const iso = Number.isNaN(d.getTime()) ? String(ts) : d.toISOString();
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace('Z', ' UTC')}</time>`;
}

/** A value from the log as one line of text, cut to `max` characters. */
export function shortValue(value: unknown, max = 60): string {
  const text = value === undefined ? '?' : toJson(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function fieldLine(f: FieldChangeDisplay, action: string): string {
  if (f.masked) return `${f.label}: ${action === 'update' ? 'changed ' : ''}(masked)`;
  if (action === 'insert') return `${f.label}: ${shortValue(f.new)}`;
  if (action === 'delete') return `${f.label}: ${shortValue(f.old)}`;
  return `${f.label}: ${shortValue(f.old)} → ${shortValue(f.new)}`;
}

export function summary(e: DisplayEntry): string {
  if (e.action === 'truncate') return 'table truncated';
  const list = e.fields.map((f) => fieldLine(f, e.action)).join('; ');
  if (list !== '') return list;
  if (e.additional_data) return shortValue(e.additional_data, 120);
  return e.action === 'update' ? '(no tracked changes)' : '';
}

function filterLink(base: string, key: FilterKey, value: string | null, label?: string): Html {
  if (value === null || value === '') return html`<span class="none">—</span>`;
  return html`<a class="filter" href="${href(base, '/', { [key]: value })}" title="Show only ${key} ${value}">${label ?? value}</a>`;
}

/** One row of an entry list (the list page, an object's timeline, the live stream). */
export function entryRow(base: string, e: DisplayEntry): Html {
  const table = tableName(e);
  const object = objectHref(base, e);
  const objectLabel = e.object_repr ?? e.object_pk;
  return html`<tr class="entry" data-id="${e.id}">
<td class="c-id"><a class="entry-link" href="${href(base, `/entries/${e.id}`)}">#${e.id}</a></td>
<td class="c-ts">${time(e.ts)}</td>
<td class="c-action"><span class="badge a-${/^[a-z_]+$/.test(e.action) ? e.action : 'custom'}">${e.action}</span></td>
<td class="c-object">${table === null ? html`<span class="none">—</span>` : filterLink(base, 'table', tableParam(e), table)}${
  object === null ? '' : html` <a class="object-link" href="${object}">${objectLabel}</a>`}</td>
<td class="c-actor">${e.actor === null ? html`<span class="dbuser" title="database user">${e.db_user}</span>` : filterLink(base, 'actor', e.actor)}</td>
<td class="c-cid">${filterLink(base, 'cid', e.cid)}<br><a class="filter tx" href="${href(base, '/', { txid: e.txid })}" title="Show only transaction ${e.txid}">tx ${e.txid}</a></td>
<td class="c-summary"><span class="clamp">${summary(e)}</span></td>
</tr>`;
}

export function entryTable(base: string, entries: DisplayEntry[], empty: string): Html {
  return html`<div class="table-wrap"><table class="entries">
<thead><tr><th scope="col">Entry</th><th scope="col">Time</th><th scope="col">Action</th><th scope="col">Object</th><th scope="col">Actor</th><th scope="col">Correlation / tx</th><th scope="col">Changes</th></tr></thead>
<tbody id="entries">${entries.map((e) => entryRow(base, e))}</tbody>
</table>${entries.length === 0 ? html`<p class="empty" id="empty">${empty}</p>` : ''}</div>`;
}

export interface LayoutInput {
  base: string;
  title: string;
  body: Html;
  /** SSE URL for live updates of this page, if it has any. */
  stream?: string;
}

export function layout({ base, title, body, stream }: LayoutInput): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>${title} · audit log</title>
<link rel="stylesheet" href="${base}/assets/viewer.css">
<script src="${base}/assets/viewer.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="${href(base, '/')}">Audit log</a>
${stream === undefined ? '' : html`<div class="live" id="live" data-stream="${stream}">
<span class="live-dot" aria-hidden="true"></span><span id="live-status" role="status" aria-live="polite">Live updates need JavaScript</span>
<button type="button" id="live-toggle" hidden>Pause</button>
</div>`}
</header>
<main id="main" tabindex="-1">
${body}
</main>
<footer class="bottom">Read-only view of the audit log. Keys: <kbd>/</kbd> search, <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>Enter</kbd> open, <kbd>p</kbd> pause live.</footer>
</body>
</html>`;
}

const LABELS: Record<FilterKey, [string, string]> = {
  table: ['Table', 'public.users'],
  action: ['Action', 'update'],
  actor: ['Actor', 'alice@example.com'],
  cid: ['Correlation id', 'req-…'],
  txid: ['Transaction', '123456'],
  since: ['Since (UTC)', '2026-01-31 or …T14:00Z'],
  until: ['Until (UTC)', '2026-02-01'],
  q: ['Object text', 'name or key'],
};

export function filterForm(base: string, filters: Filters): Html {
  const field = (key: FilterKey) => {
    const [label, placeholder] = LABELS[key];
    const list = key === 'action' ? html` list="actions"` : '';
    return html`<label class="f-${key}"><span>${label}</span><input name="${key}" value="${filters[key] ?? ''}" placeholder="${placeholder}"${list} autocomplete="off"${key === 'q' ? html` type="search" id="q"` : ''}></label>`;
  };
  return html`<form class="filters" method="get" action="${href(base, '/')}" role="search">
${FILTER_KEYS.map(field)}
<datalist id="actions"><option value="insert"><option value="update"><option value="delete"><option value="truncate"></datalist>
<div class="buttons"><button type="submit">Filter</button> <a class="button secondary" href="${href(base, '/')}">Clear</a></div>
</form>`;
}

export interface ListInput {
  base: string;
  filters: Filters;
  entries: DisplayEntry[];
  nextCursor: string | null;
  /** A text search stopped at its scan limit. */
  partial?: { scanned: number };
  first: boolean;
  stream?: string;
}

export function listPage(input: ListInput): Html {
  const { base, filters, entries, nextCursor } = input;
  const active = FILTER_KEYS.filter((k) => filters[k] !== undefined && filters[k] !== '');
  const more = nextCursor === null ? '' : html`<a class="button" rel="next" href="${href(base, '/', { ...filters, cursor: nextCursor })}">${
    input.partial ? 'Search older entries →' : 'Older entries →'}</a>`;
  const note = input.partial
    ? html`<p class="note">Searched the ${input.partial.scanned.toLocaleString('en')} newest entries matching the other filters${entries.length === 0 ? ' and found no match' : ''}.</p>`
    : '';
  const body = html`<h1>Entries${active.length > 0 ? html` <small>filtered by ${join(active.map((k) => html`<span class="chip">${LABELS[k][0].replace(' (UTC)', '')}: ${filters[k]}</span>`), ' ')}</small>` : ''}</h1>
${filterForm(base, filters)}
${entryTable(base, entries, active.length > 0 ? 'No entries match these filters.' : 'The log is empty.')}
${note}
<nav class="pager" aria-label="Pages">${input.first ? '' : html`<a class="button secondary" href="${href(base, '/', filters)}">← Newest</a> `}${more}</nav>`;
  return layout({ base, title: 'Entries', body, stream: input.stream });
}

function valueCell(value: unknown, masked: boolean, absent: boolean): Html {
  if (absent) return html`<td class="v absent"><span class="none">—</span></td>`;
  if (masked) return html`<td class="v masked"><span class="badge masked">masked</span></td>`;
  return html`<td class="v"><pre>${toJson(value, 2)}</pre></td>`;
}

function diffTable(e: DisplayEntry): Html {
  if (e.fields.length === 0) return html`<p class="empty">This entry records no field changes.</p>`;
  const rows = e.fields.map((f) => {
    const kind = f.masked ? 'masked' : e.action === 'insert' ? 'added' : e.action === 'delete' ? 'removed' : 'changed';
    return html`<tr class="d-${kind}"><th scope="row">${f.label}${f.label === f.field ? '' : html` <code class="col">${f.field}</code>`}</th>
${valueCell(f.old, f.masked, e.action === 'insert')}${valueCell(f.new, f.masked, e.action === 'delete')}</tr>`;
  });
  return html`<div class="table-wrap"><table class="diff"><thead><tr><th scope="col">Field</th><th scope="col">Before</th><th scope="col">After</th></tr></thead>
<tbody>${rows}</tbody></table></div>`;
}

function context(base: string, e: DisplayEntry): Html {
  const row = (label: string, value: Html | string | null) =>
    html`<div><dt>${label}</dt><dd>${value === null || value === '' ? html`<span class="none">—</span>` : value}</dd></div>`;
  return html`<dl class="context">
${row('Time', time(e.ts))}
${row('Transaction', filterLink(base, 'txid', e.txid))}
${row('Actor', e.actor === null ? null : filterLink(base, 'actor', e.actor))}
${row('Correlation id', e.cid === null ? null : filterLink(base, 'cid', e.cid))}
${row('Client IP', e.remote_addr)}
${row('Database user', e.db_user)}
${row('Application', e.application_name)}
${row('Tenant', e.tenant_id)}
</dl>
${e.additional_data === null ? '' : html`<h2>Extra data</h2><pre class="json">${toJson(e.additional_data, 2)}</pre>`}`;
}

export function entryPage(base: string, e: DisplayEntry): Html {
  const table = tableName(e);
  const object = objectHref(base, e);
  // ts comes as a Date (milliseconds); the next millisecond is at or after the entry's instant.
  const atTs = new Date(new Date(e.ts).getTime() + 1).toISOString();
  const body = html`<p class="crumbs"><a href="${href(base, '/')}">Entries</a> › #${e.id}</p>
<h1><span class="badge a-${/^[a-z_]+$/.test(e.action) ? e.action : 'custom'}">${e.action}</span> ${table ?? 'event'}${
  e.object_pk === null ? '' : html` <span class="pk">${e.object_repr ?? e.object_pk}</span>`} <small>#${e.id}</small></h1>
${object === null ? '' : html`<p class="actions"><a class="button" href="${object}">Object history</a> <a class="button secondary" href="${objectHref(base, e, { at: atTs })}">State at this entry</a></p>`}
<h2>Changes</h2>
${diffTable(e)}
<h2>Context</h2>
${context(base, e)}
${e.snapshot === null ? '' : html`<h2>Snapshot</h2><pre class="json">${toJson(e.snapshot, 2)}</pre>`}`;
  return layout({ base, title: `#${e.id} ${e.action} ${table ?? ''}`, body });
}

export interface ObjectInput {
  base: string;
  table: string;
  pk: string;
  at: string | undefined;
  state: Record<string, unknown> | null | UnknownState;
  labels: Map<string, string>;
  entries: DisplayEntry[];
  nextCursor: string | null;
  first: boolean;
  stream?: string;
}

export function objectPage(input: ObjectInput): Html {
  const { base, table, pk, state, labels } = input;
  const path = `/objects/${encodeURIComponent(table)}/${encodeURIComponent(pk)}`;
  const stateTable = isUnknownState(state)
    ? html`<p class="empty">The log cannot tell the object's state ${input.at === undefined ? 'now' : 'at that instant'}: ${
      state.earliest === null ? 'it has no entries (a row older than the log: run auditlog baseline)'
        : `that is before its first entry (#${state.earliest.id}, ${state.earliest.action}), and the row existed before it`}.</p>`
    : state === null
    ? html`<p class="empty">The object did not exist ${input.at === undefined ? 'now (deleted, or never captured)' : 'at that instant'}.</p>`
    : html`<div class="table-wrap"><table class="state"><tbody>${Object.entries(state).map(([col, value]) => html`<tr><th scope="row">${labels.get(col) ?? col}${
        (labels.get(col) ?? col) === col ? '' : html` <code class="col">${col}</code>`}</th>${valueCell(value, value === MASK, false)}</tr>`)}</tbody></table></div>`;
  const body = html`<p class="crumbs"><a href="${href(base, '/')}">Entries</a> › <a href="${href(base, '/', { table })}">${table}</a> › ${pk}</p>
<h1>${table} <span class="pk">${input.entries[0]?.object_repr ?? pk}</span></h1>
<section class="timetravel" aria-labelledby="tt">
<h2 id="tt">State ${input.at === undefined ? 'now' : html`at ${input.at}`}</h2>
<form method="get" action="${href(base, path)}" class="at-form">
<label><span>State at (UTC)</span><input name="at" value="${input.at ?? ''}" placeholder="2026-01-31T14:00:00Z" autocomplete="off"></label>
<button type="submit">Show</button> ${input.at === undefined ? '' : html`<a class="button secondary" href="${href(base, path)}">Now</a>`}
</form>
${stateTable}
</section>
<h2>Timeline</h2>
${entryTable(base, input.entries, 'No entries for this object.')}
<nav class="pager" aria-label="Pages">${input.first ? '' : html`<a class="button secondary" href="${href(base, path, { at: input.at })}">← Newest</a> `}${
  input.nextCursor === null ? '' : html`<a class="button" rel="next" href="${href(base, path, { at: input.at, cursor: input.nextCursor })}">Older entries →</a>`}</nav>`;
  return layout({ base, title: `${table} ${pk}`, body, stream: input.stream });
}

export function messagePage(base: string, title: string, message: string): Html {
  return layout({ base, title, body: html`<h1>${title}</h1><p class="message">${message}</p><p><a href="${href(base, '/')}">Back to the entries</a></p>` });
}
