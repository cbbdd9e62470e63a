import { createHash } from 'node:crypto';
import { AuditLogError } from './errors';

/** PostgreSQL's NAMEDATALEN - 1: longer identifiers are silently truncated by the server. */
export const MAX_IDENTIFIER_BYTES = 63;

/** Quote an identifier the way PostgreSQL's quote_ident() does, always. */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error(`identifier contains a NUL byte: ${JSON.stringify(name)}`);
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Quote a string literal the way quote_literal() does. A value with a backslash becomes an
 * E'' literal with the backslash doubled, which reads the same whatever
 * standard_conforming_strings is in the session that compiles the function body.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error(`literal contains a NUL byte: ${JSON.stringify(value)}`);
  const quoted = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${quoted.replace(/\\/g, '\\\\')}'` : `'${quoted}'`;
}

/**
 * Text safe inside a `-- line comment`: a line break in a name would end the comment and turn
 * the rest of the name into SQL, so CR and LF are shown escaped.
 */
export function commentText(text: string): string {
  return text.replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

export interface QualifiedName {
  schema: string;
  name: string;
}

export function qualified(q: QualifiedName): string {
  return `${quoteIdent(q.schema)}.${quoteIdent(q.name)}`;
}

/** "schema.table" for messages and config keys, quoting only where SQL would need it. */
export function displayName(q: QualifiedName): string {
  const part = (s: string) => (/^[a-z_][a-z0-9_$]*$/.test(s) ? s : quoteIdent(s));
  return `${part(q.schema)}.${part(q.name)}`;
}

/**
 * Parse `schema.table` with SQL identifier rules: unquoted parts fold to lower case, "quoted"
 * parts are exact ("" is a literal quote). A bare name means the `public` schema.
 * Returns null when the text is not one or two identifiers.
 */
export function parseQualifiedName(text: string): QualifiedName | null {
  const parts: string[] = [];
  let i = 0;
  const s = text.trim();
  while (i <= s.length) {
    if (s[i] === '"') {
      let out = '';
      i++;
      for (;;) {
        if (i >= s.length) return null;
        if (s[i] === '"') {
          if (s[i + 1] === '"') { out += '"'; i += 2; continue; }
          i++;
          break;
        }
        out += s[i++];
      }
      if (out === '') return null;
      parts.push(out);
    } else {
      const m = /^[^".\s]+/.exec(s.slice(i));
      if (!m) return null;
      parts.push(m[0].toLowerCase());
      i += m[0].length;
    }
    if (i === s.length) break;
    if (s[i] !== '.') return null;
    i++;
  }
  if (parts.length === 1) return { schema: 'public', name: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, name: parts[1]! };
  return null;
}

/** A column name in config: exact, unless wrapped in double quotes (then unquoted). */
export function parseColumnName(text: string): string {
  const m = /^"((?:[^"]|"")+)"$/.exec(text);
  return m ? m[1]!.replace(/""/g, '"') : text;
}

export function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, length);
}

/** Cut a string to at most `bytes` UTF-8 bytes without splitting a character. */
function truncateBytes(text: string, bytes: number): string {
  let out = '';
  let used = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (used + size > bytes) break;
    out += ch;
    used += size;
  }
  return out;
}

/**
 * Name for a generated object: fixed prefix, a readable part, and a hash of `identity`
 * so two long names that share a prefix never collide. Always ≤ 63 bytes.
 */
export function generatedName(prefix: string, readable: string, identity: string): string {
  const hash = shortHash(identity);
  const fixedBytes = Buffer.byteLength(prefix, 'utf8') + 1 + hash.length + 1;
  if (fixedBytes > MAX_IDENTIFIER_BYTES) {
    throw new AuditLogError('NAME_TOO_LONG', `generated name prefix "${prefix}" is too long`);
  }
  const room = MAX_IDENTIFIER_BYTES - fixedBytes;
  const middle = truncateBytes(readable.toLowerCase().replace(/[^a-z0-9_]+/g, '_'), room);
  return `${prefix}_${middle}_${hash}`;
}
