import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The built UI (packages/admin, copied into packages/server/admin-ui by `npm run build`), read from disk once per
 * file and kept in memory. Nothing is fetched from a network at run time.
 */
export const ADMIN_UI_DIR = fileURLToPath(new URL('../../admin-ui/', import.meta.url));

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  json: 'application/json',
  png: 'image/png',
  ico: 'image/x-icon',
  woff2: 'font/woff2',
};

export interface StaticFile {
  body: Buffer;
  type: string;
  /** Hashed asset names never change: cached for a year; index.html is revalidated. */
  immutable: boolean;
}

const cache = new Map<string, StaticFile | null>();

/** The file at `rel` ('' for index.html), or undefined when it does not exist or the name is not a plain path. */
export function staticFile(rel: string, dir = ADMIN_UI_DIR): StaticFile | undefined {
  const name = rel === '' ? 'index.html' : rel;
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/.test(name) || name.includes('..'))
    return undefined;
  const key = `${dir}\0${name}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit ?? undefined;
  let file: StaticFile | null = null;
  try {
    const ext = name.slice(name.lastIndexOf('.') + 1);
    file = {
      body: readFileSync(join(dir, name)),
      type: TYPES[ext] ?? 'application/octet-stream',
      immutable: name.startsWith('assets/'),
    };
  } catch {
    file = null;
  }
  // A missing index.html is not remembered: the UI may be built while Herald runs.
  if (file || name !== 'index.html') cache.set(key, file);
  return file ?? undefined;
}
