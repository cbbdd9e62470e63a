// Lossless JSON: numbers come back with the digits that were stored.
//
// PostgreSQL's jsonb keeps numbers as `numeric`: `99999999999999999999.9999999999`,
// `-9223372036854775808` and `1.0` are stored exactly as written (numeric keeps its scale).
// JSON.parse turns each into the nearest double, so `1e20`, `-9223372036854776000` and `1`
// come back. parseExactJson() returns every number that a JavaScript number holds exactly as
// a plain number and every other one as an ExactNumber holding the digit text;
// stringifyExactJson() prints an ExactNumber as those digits again.
//
// "Holds exactly" means: JavaScript prints the number back as the very same text,
// `String(Number(text)) === text`. So `42`, `-7`, `0.1`, `12.5`, `9007199254740991` stay plain
// numbers; `1.0`, `10.50` (a scale that JavaScript drops), `9007199254740993`,
// `-9223372036854775808`, `1.000000000000000000001`, `1E+2` and `-0` are ExactNumbers.
//
// Parsing itself is JSON.parse (strings, escapes, nesting, "__proto__" keys and errors are the
// platform's); a scan outside strings finds the number tokens JSON.parse would change, and
// only when there are any does a second JSON.parse pass put ExactNumbers in their place.
import { randomBytes } from 'node:crypto';

/** A JSON number token: the grammar of RFC 8259, nothing more (no "+", no ".5", no "1."). */
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const WHOLE_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/**
 * A JSON number that a JavaScript number cannot hold exactly (see the module comment for the
 * rule), kept as its digit text.
 *
 * - `text` / `toString()`: the digits as stored, e.g. `"-9223372036854775808"` or `"1.0"`.
 * - `toJSON()`: the same text as a string, so plain `JSON.stringify` (Express `res.json`, a
 *   logger) writes `"1.0"` in quotes: the digits survive, the type becomes string.
 *   `stringifyExactJson()` writes them as a bare JSON number.
 * - `valueOf()`: the nearest JavaScript number (approximate by definition), so `<`, `>` and
 *   arithmetic work as they did before, rounded as JSON.parse would have rounded them.
 * - `toBigInt()`: the exact integer as a bigint (throws a RangeError for a fraction).
 */
export class ExactNumber {
  readonly text: string;

  constructor(text: string) {
    if (typeof text !== 'string' || !WHOLE_NUMBER.test(text)) {
      throw new SyntaxError(`ExactNumber needs a JSON number, not ${JSON.stringify(text)}`);
    }
    this.text = text;
  }

  toString(): string {
    return this.text;
  }

  toJSON(): string {
    return this.text;
  }

  valueOf(): number {
    return Number(this.text);
  }

  /** True when the text is an integer (no fraction, no exponent), e.g. a bigint value. */
  isInteger(): boolean {
    return /^-?[0-9]+$/.test(this.text);
  }

  toBigInt(): bigint {
    if (!this.isInteger()) throw new RangeError(`${this.text} is not an integer`);
    return BigInt(this.text);
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `ExactNumber(${this.text})`;
  }
}

export function isExactNumber(value: unknown): value is ExactNumber {
  return value instanceof ExactNumber;
}

/** A number token as parseExactJson returns it: a plain number when that is exact. */
export function exactNumber(text: string): number | ExactNumber {
  const n = Number(text);
  return String(n) === text ? n : new ExactNumber(text);
}

/** Like JSON.parse, but numbers JavaScript cannot hold exactly become ExactNumbers. */
export function parseExactJson(text: string): unknown {
  const inexact = inexactNumbers(text);
  if (inexact.length === 0) return JSON.parse(text);
  // Put a marker string where each such number stands and let JSON.parse build the value;
  // the reviver swaps the markers for ExactNumbers. The marker carries a random tag chosen
  // after the text was written, so no string in the text can pose as one.
  const tag = `\u0000exact-${randomBytes(12).toString('hex')}:`;
  const found = new Map<string, ExactNumber>();
  let rewritten = '';
  let from = 0;
  inexact.forEach(([start, end], i) => {
    const marker = `${tag}${i}`;
    found.set(marker, new ExactNumber(text.slice(start, end)));
    rewritten += `${text.slice(from, start)}${JSON.stringify(marker)}`;
    from = end;
  });
  rewritten += text.slice(from);
  return JSON.parse(rewritten, (_key, value: unknown) =>
    (typeof value === 'string' && value.startsWith(tag) ? found.get(value) ?? value : value));
}

/** [start, end) of each number token outside strings that JSON.parse would not give back exactly. */
function inexactNumbers(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const length = text.length;
  let i = 0;
  while (i < length) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < length) {
        const s = text.charCodeAt(i);
        if (s === 0x5c /* \ */) i += 2;
        else if (s === 0x22) break;
        else i++;
      }
      i++;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) return []; // not JSON: JSON.parse reports it
      const end = i + m[0].length;
      if (typeof exactNumber(m[0]) !== 'number') out.push([i, end]);
      i = end;
    } else {
      i++;
    }
  }
  return out;
}

/**
 * Like JSON.stringify(value, null, space), but an ExactNumber is written as its digits (a bare
 * JSON number) and a bigint as its integer digits (JSON.stringify throws on bigints).
 * Returns undefined for the values JSON.stringify returns undefined for (undefined, functions).
 */
export function stringifyExactJson(value: unknown, space?: number): string {
  const gap = space === undefined ? '' : ' '.repeat(Math.max(0, Math.min(10, Math.floor(space))));
  const seen = new Set<object>();

  const write = (key: string, raw: unknown, indent: string): string | undefined => {
    let v = raw;
    if (v instanceof ExactNumber) return v.text;
    if (v !== null && (typeof v === 'object' || typeof v === 'bigint') && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      v = (v as { toJSON(key: string): unknown }).toJSON(key);
      if (v instanceof ExactNumber) return v.text;
    }
    if (v instanceof Number || v instanceof String || v instanceof Boolean) v = v.valueOf();
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return JSON.stringify(v);
      case 'number':
        return Number.isFinite(v) ? String(v) : 'null';
      case 'bigint':
        return v.toString();
      case 'object':
        break;
      default:
        return undefined;
    }
    if (v === null) return 'null';
    const obj = v as object;
    if (seen.has(obj)) throw new TypeError('Converting circular structure to JSON');
    seen.add(obj);
    const inner = indent + gap;
    let parts: string[];
    let open: string;
    let close: string;
    if (Array.isArray(obj)) {
      parts = obj.map((item, i) => write(String(i), item, inner) ?? 'null');
      [open, close] = ['[', ']'];
    } else {
      parts = [];
      for (const k of Object.keys(obj)) {
        const text = write(k, (obj as Record<string, unknown>)[k], inner);
        if (text !== undefined) parts.push(`${JSON.stringify(k)}:${gap === '' ? '' : ' '}${text}`);
      }
      [open, close] = ['{', '}'];
    }
    seen.delete(obj);
    if (parts.length === 0) return open + close;
    if (gap === '') return `${open}${parts.join(',')}${close}`;
    return `${open}\n${inner}${parts.join(`,\n${inner}`)}\n${indent}${close}`;
  };

  return write('', value, '') as string;
}
