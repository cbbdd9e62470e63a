// Entries as people read them: display names from the table's `mapping`, masked values flagged,
// one summary line per entry (django-auditlog's changes_display_dict and changes_str).
import { MASK } from '../generate';
import { stringifyExactJson } from '../json';
import type { DisplayEntry, FieldChangeDisplay, HistoryOptions, LogEntry } from '../interfaces';
import { inColumnOrder, readTableConfigs, schemaOf, type Db, type StoredTableConfig } from './common';

/** Longest value shown in a summary before it is cut with "…". */
const MAX_VALUE_CHARS = 60;

/** Pure: one entry plus its table's config (mapping, mask) → display form. */
export function describeEntry(entry: LogEntry, config: StoredTableConfig = {}): DisplayEntry {
  const mapping = config.mapping ?? {};
  const maskList = new Set(config.mask ?? []);
  const fields: FieldChangeDisplay[] = Object.entries(inColumnOrder(entry.changes ?? {}, config.include)).map(([field, pair]) => {
    const [oldValue, newValue] = Array.isArray(pair) ? pair : [undefined, pair];
    return {
      field,
      label: mapping[field] ?? field,
      old: oldValue,
      new: newValue,
      // The mask list may have changed since the entry was written; the marker never lies.
      masked: maskList.has(field) || oldValue === MASK || newValue === MASK,
    };
  });
  const changesDisplay: Record<string, [unknown, unknown]> = {};
  for (const f of fields) changesDisplay[f.label] = [f.old, f.new];
  return {
    ...entry,
    changes: entry.changes && inColumnOrder(entry.changes, config.include),
    fields,
    changesDisplay,
    summary: summarize(entry, fields),
  };
}

/** Each entry's table's installed config, read once per table. */
async function configsOf(db: Db, entries: LogEntry[], options: HistoryOptions): Promise<(e: LogEntry) => StoredTableConfig | undefined> {
  const tables = new Map<string, { schema: string; name: string }>();
  for (const e of entries) {
    if (e.table_schema !== null && e.table_name !== null) {
      tables.set(`${e.table_schema}\0${e.table_name}`, { schema: e.table_schema, name: e.table_name });
    }
  }
  const configs = await readTableConfigs(db, schemaOf(options), [...tables.values()]);
  return (e) => configs.get(`${e.table_schema}\0${e.table_name}`);
}

/** The entries with display names, reading each table's installed config once. */
export async function describeEntries(db: Db, entries: LogEntry[], options: HistoryOptions = {}): Promise<DisplayEntry[]> {
  const config = await configsOf(db, entries, options);
  return entries.map((e) => describeEntry(e, config(e)));
}

/** The entries with `changes` and `snapshot` keys in their table's column order. */
export async function entriesInColumnOrder(db: Db, entries: LogEntry[], options: HistoryOptions = {}): Promise<LogEntry[]> {
  const config = await configsOf(db, entries, options);
  return entries.map((e) => {
    const columns = config(e)?.include;
    return {
      ...e,
      changes: e.changes && inColumnOrder(e.changes, columns),
      snapshot: e.snapshot && inColumnOrder(e.snapshot, columns),
    };
  });
}

export function formatValue(value: unknown): string {
  if (value === undefined) return '?';
  const text = stringifyExactJson(value) ?? String(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

/** `label: old → new`, or `label: changed (masked)` when the values are hidden. */
export function describeField(f: FieldChangeDisplay, action: string): string {
  if (f.masked) {
    if (action === 'insert') return `${f.label}: (masked)${f.new === null ? ' null' : ''}`;
    if (action === 'delete') return `${f.label}: (masked)${f.old === null ? ' null' : ''}`;
    return `${f.label}: changed (masked)`;
  }
  if (action === 'insert') return `${f.label}: ${formatValue(f.new)}`;
  if (action === 'delete') return `${f.label}: ${formatValue(f.old)}`;
  return `${f.label}: ${formatValue(f.old)} → ${formatValue(f.new)}`;
}

function summarize(entry: LogEntry, fields: FieldChangeDisplay[]): string {
  const list = fields.map((f) => describeField(f, entry.action)).join('; ');
  switch (entry.action) {
    case 'insert': return `created: ${list}`;
    case 'update': return list === '' ? 'updated (no tracked changes)' : list;
    case 'delete': return `deleted: ${list}`;
    case 'truncate': return 'table truncated';
    default: {
      const data = entry.additional_data ? ` ${formatValue(entry.additional_data)}` : '';
      return `${entry.action}${list === '' ? '' : `: ${list}`}${data}`;
    }
  }
}
