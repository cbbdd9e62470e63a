// The stylesheet and script, shipped in the package next to this module (the build copies
// src/viewer/static to dist/viewer/static) and served from memory. No CDN, no build step.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = { '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

let cache: Map<string, Asset> | null = null;

export function assets(): Map<string, Asset> {
  if (cache) return cache;
  cache = new Map();
  for (const name of ['viewer.css', 'viewer.js']) {
    const body = readFileSync(path.join(__dirname, 'static', name));
    cache.set(name, { body, type: TYPES[path.extname(name)]!, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return cache;
}
