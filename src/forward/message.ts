// What one log entry becomes on the broker: a body, a message id and a few headers.
import type { LogEntry } from '../interfaces';
import { stringifyExactJson } from '../json';

/**
 * The entry as JSON, every column of auditlog.log_entry. Numbers keep the digits PostgreSQL
 * stored (the subscriber reads json/jsonb losslessly; ExactNumbers are written as bare numbers),
 * the same text `auditlog history --json` prints.
 */
export function entryBody(entry: LogEntry): string {
  return stringifyExactJson(entry);
}

/**
 * Nats-Msg-Id (and Kafka's header of the same meaning): unique per database and entry, equal
 * for every redelivery of one entry, so the broker's deduplication drops the copies.
 */
export function messageId(source: string, entry: LogEntry): string {
  return `${source}:${entry.id}`;
}

/** Headers besides Nats-Msg-Id, for consumers that route or deduplicate without parsing the body. */
export function entryHeaders(source: string, entry: LogEntry): Array<[string, string]> {
  return [
    ['Auditlog-Entry-Id', String(entry.id)],
    ['Auditlog-Source', source],
    ['Auditlog-Txid', String(entry.txid)],
  ];
}

/**
 * Entries with the same key keep their order on the broker: the object (table and primary
 * key). Null for an entry with no object (TRUNCATE, a table-level or custom event): it is
 * ordered against every other entry.
 */
export function orderingKey(entry: LogEntry): string | null {
  return entry.object_pk === null ? null : JSON.stringify([entry.table_schema, entry.table_name, entry.object_pk]);
}
