/**
 * Where a Next.js rewrite sends a path, read from the app's build output: `next build` (and `next dev`) write every
 * rewrite, with its destination and a matching regex, to `.next/routes-manifest.json` (`.next/dev/` for `next dev`
 * from Next 16). The doctor reads it to find Herald's own address when Herald answers through the app's rewrite.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ManifestRewrite {
  source?: unknown;
  destination?: unknown;
  regex?: unknown;
}

export interface RewriteDestination {
  /** The rewrite's source pattern, as written in next.config. */
  source: string;
  /** Its destination URL (absolute http:// or https://). */
  destination: string;
  /** The manifest file it came from. */
  manifest: string;
}

function rewritesOf(manifest: unknown): ManifestRewrite[] {
  const r = (manifest as { rewrites?: unknown } | null)?.rewrites;
  if (Array.isArray(r)) return r as ManifestRewrite[];
  if (r && typeof r === 'object') {
    const phases = r as Record<string, unknown>;
    return ['beforeFiles', 'afterFiles', 'fallback'].flatMap((k) =>
      Array.isArray(phases[k]) ? (phases[k] as ManifestRewrite[]) : [],
    );
  }
  return [];
}

/**
 * The absolute destination of the first rewrite in `appDir`'s routes manifest whose pattern matches `path`, or
 * undefined (no manifest, no matching rewrite, or a destination inside the app itself).
 */
export function rewriteDestinationFor(appDir: string, path: string): RewriteDestination | undefined {
  for (const rel of ['.next/routes-manifest.json', '.next/dev/routes-manifest.json']) {
    const file = join(appDir, rel);
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      continue;
    }
    for (const rw of rewritesOf(manifest)) {
      if (typeof rw.destination !== 'string' || typeof rw.source !== 'string') continue;
      if (!/^https?:\/\//i.test(rw.destination)) continue;
      if (sourceMatches(rw.source, path)) return { source: rw.source, destination: rw.destination, manifest: rel };
    }
  }
  return undefined;
}

/**
 * Whether a rewrite's `source` pattern (Next.js's path syntax: literal segments, `:name`, `:name?`, `:name*`,
 * `:name+`) matches `path`. Matched segment by segment rather than by compiling the manifest's `regex`: a pattern
 * read from a file is never turned into a regular expression (docs/security.md, regular expressions).
 */
export function sourceMatches(source: string, path: string): boolean {
  const want = source.split('/').filter((s) => s !== '');
  const have = path
    .split('?')[0]!
    .split('/')
    .filter((s) => s !== '');
  let i = 0;
  for (let w = 0; w < want.length; w++) {
    const seg = want[w]!;
    if (seg.startsWith(':')) {
      const last = seg[seg.length - 1];
      if (last === '*') return true;
      if (last === '+') return i < have.length;
      if (last === '?') {
        if (i < have.length && w === want.length - 1) i++;
        continue;
      }
      if (i >= have.length) return false;
      i++;
      continue;
    }
    if (have[i] !== seg) return false;
    i++;
  }
  return i === have.length;
}
