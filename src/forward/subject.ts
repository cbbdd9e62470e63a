// NATS subject names for log entries: auditlog.<schema>.<table>.<action>, every part one token.
//
// A NATS token may not contain ".", " ", "*", ">" or control characters, and subscribers write
// filters over tokens, so each part is escaped to the characters [A-Za-z0-9_] plus "-":
// every UTF-8 byte outside [A-Za-z0-9_] becomes "-" and two upper-case hex digits ("-" itself
// becomes "-2D"). "order_items" stays "order_items"; "my.table" becomes "my-2Etable"; "naïve"
// becomes "na-C3-AFve". A part that is NULL (an entry with no table) is the lone token "-",
// which no escaped name can be. The mapping is reversible: unescapeSubjectToken.
import { AuditLogError } from '../errors';

export const SUBJECT_PREFIX = 'auditlog';

/** Every subject the forwarder publishes on matches this filter. */
export const SUBJECT_FILTER = `${SUBJECT_PREFIX}.>`;

/** The token of a NULL part. */
export const NULL_TOKEN = '-';

const PLAIN = /^[A-Za-z0-9_]$/;

/** One subject token for `part` (null: the NULL token). */
export function escapeSubjectToken(part: string | null): string {
  if (part === null) return NULL_TOKEN;
  if (part === '') return '-00-'; // never a PostgreSQL name; kept distinct and reversible anyway
  let out = '';
  for (const ch of part) {
    if (PLAIN.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, 'utf8')) out += `-${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The part a token stands for (null for the NULL token); throws on a token no name escapes to. */
export function unescapeSubjectToken(token: string): string | null {
  if (token === NULL_TOKEN) return null;
  if (token === '-00-') return '';
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const ch = token[i]!;
    if (ch === '-') {
      const hex = token.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new AuditLogError('INVALID_ARGUMENT', `"${token}" is not an escaped subject token: "-" must be followed by two upper-case hex digits`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (PLAIN.test(ch)) {
      bytes.push(ch.charCodeAt(0));
    } else {
      throw new AuditLogError('INVALID_ARGUMENT', `"${token}" is not an escaped subject token: "${ch}" must be escaped`);
    }
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    throw new AuditLogError('INVALID_ARGUMENT', `"${token}" is not the canonical escape of any name: its bytes are not UTF-8`);
  }
  if (escapeSubjectToken(text) !== token) throw new AuditLogError('INVALID_ARGUMENT', `"${token}" is not the canonical escape of any name`);
  return text;
}

/** The subject of one entry: auditlog.<schema>.<table>.<action>. */
export function entrySubject(entry: { table_schema: string | null; table_name: string | null; action: string }): string {
  return [SUBJECT_PREFIX, escapeSubjectToken(entry.table_schema), escapeSubjectToken(entry.table_name), escapeSubjectToken(entry.action)].join('.');
}

/**
 * The subjects a forwarder publishes on, as a pattern with "*" for any token: every entry
 * ("auditlog.*.*.*"), or with a table filter, those tables' entries ("auditlog.public.users.*").
 */
export function publishedSubjects(tables: Array<{ schema: string; name: string }> | null): string[] {
  if (tables === null) return [`${SUBJECT_PREFIX}.*.*.*`];
  return tables.map((t) => `${SUBJECT_PREFIX}.${escapeSubjectToken(t.schema)}.${escapeSubjectToken(t.name)}.*`);
}

/**
 * Whether a stream subject (a filter with "*" and ">") matches every subject of `pattern`
 * (tokens, "*" for any token). "auditlog.>", ">" and "auditlog.*.*.*" cover "auditlog.*.*.*";
 * "auditlog.public.>" covers only "auditlog.public.users.*" and the like.
 */
export function covers(filter: string, pattern: string): boolean {
  const f = filter.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < p.length; i++) {
    const t = f[i];
    if (t === undefined) return false;
    if (t === '>') return true;
    if (t !== '*' && t !== p[i]) return false; // a literal covers only the same literal, never "*"
  }
  return f.length === p.length;
}
