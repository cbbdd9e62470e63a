// The viewer's token. Checked on every request (pages, JSON, assets, the live stream) by
// comparing SHA-256 digests with timingSafeEqual, so neither the comparison's time nor the
// token's length leaks. A browser brings it once as ?token=…; the viewer answers with an
// HttpOnly, SameSite=Strict cookie and redirects to the same URL without the token, so it does
// not stay in the address bar, the history or a Referer. Scripts send Authorization: Bearer.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const COOKIE = 'auditlog_viewer';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The cookie value for a token: derived from it, so the token itself is never stored. */
function cookieValue(token: string): string {
  return createHash('sha256').update(`pg-auditlog viewer session\0${token}`, 'utf8').digest('base64url');
}

function same(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export type AuthResult =
  | { ok: true; /** ?token= was right: set this cookie and redirect without it. */ setCookie?: string }
  | { ok: false };

export interface TokenCheck {
  check(req: IncomingMessage, query: URLSearchParams, cookiePath: string, secure: boolean): AuthResult;
}

export function tokenCheck(token: string | undefined): TokenCheck {
  if (token === undefined) return { check: () => ({ ok: true }) };
  const tokenDigest = digest(token);
  const cookie = cookieValue(token);
  const cookieDigest = digest(cookie);
  return {
    check(req, query, cookiePath, secure) {
      const auth = req.headers.authorization;
      if (auth !== undefined && /^Bearer /i.test(auth)) return { ok: same(auth.slice(7).trim(), tokenDigest) };
      const fromQuery = query.get('token');
      if (fromQuery !== null) {
        if (!same(fromQuery, tokenDigest)) return { ok: false };
        const attrs = [`${COOKIE}=${cookie}`, `Path=${cookiePath}`, 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : [])];
        return { ok: true, setCookie: attrs.join('; ') };
      }
      const fromCookie = readCookie(req, COOKIE);
      return { ok: fromCookie !== undefined && same(fromCookie, cookieDigest) };
    },
  };
}
