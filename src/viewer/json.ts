// The one place where the viewer turns log values into text and reads stored JSON. Every JSON
// response and every value shown on a page goes through these two functions, so numbers keep
// the digits PostgreSQL stored (jsonb numbers are numerics: 1.0, 99999999999999999999.99).
import { types } from 'pg';
import { parseExactJson, stringifyExactJson } from '../json';

/** JSON text of a value, lossless (ExactNumber and bigint as their digits). */
export function toJson(value: unknown, space?: number): string {
  return stringifyExactJson(value, space) ?? 'undefined';
}

/** Stored json / jsonb text back to a value, lossless. */
export function fromJson(text: string): unknown {
  return parseExactJson(text);
}

const JSON_OID = 114;
const JSONB_OID = 3802;

/** node-postgres type parsers for the viewer's queries: json and jsonb read losslessly. */
export const exactTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if ((oid === JSON_OID || oid === JSONB_OID) && format !== 'binary') return fromJson;
    return types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  },
};
