/**
 * Where the client connects, decided in one fixed order so a wrong guess never happens silently:
 *   1. the explicit `url` option;
 *   2. `NEXT_PUBLIC_HERALD_URL` (inlined by Next.js at build time);
 *   3. same origin: `/ws` on the page's own host, `wss:` on an https page, `ws:` otherwise.
 * There is no fallback to "the page's host on another port": that guess is the bug this package exists to end.
 */

export type EndpointSource = 'option' | 'env' | 'same-origin';

export interface ResolvedEndpoint {
  /** The WebSocket URL (ws: or wss:). */
  url: string;
  /** Which rule chose it; named in every diagnosis. */
  source: EndpointSource;
}

export interface ResolveEndpointInput {
  /** Explicit URL: ws(s)://, http(s):// (converted), or a path like `/ws` (resolved against the page). */
  url?: string | undefined;
  /** The value of NEXT_PUBLIC_HERALD_URL. @default read from process.env when a bundler inlined it */
  envUrl?: string | undefined;
  /** The page's location. @default globalThis.location (absent in Node) */
  location?: { protocol: string; host: string } | undefined;
  /** Path used for the same-origin rule. @default '/ws' */
  path?: string;
}

export class EndpointError extends Error {
  readonly code = 'HERALD_NO_ENDPOINT';
  constructor(message: string) {
    super(message);
    this.name = 'EndpointError';
  }
}

/**
 * NEXT_PUBLIC_HERALD_URL as a bundler sees it: Next.js replaces the literal expression `process.env.NEXT_PUBLIC_HERALD_URL`
 * with its value at build time, so it must appear spelled out exactly like this.
 */
export function envHeraldUrl(): string | undefined {
  try {
    const v = process.env.NEXT_PUBLIC_HERALD_URL;
    return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
  } catch {
    // No bundler and no `process` (a plain browser page): there is no such variable.
    return undefined;
  }
}

declare const process: { env: Record<string, string | undefined> };

function pageLocation(): { protocol: string; host: string } | undefined {
  const loc = (globalThis as { location?: { protocol?: string; host?: string } }).location;
  if (loc && typeof loc.protocol === 'string' && typeof loc.host === 'string' && loc.host !== '') {
    return { protocol: loc.protocol, host: loc.host };
  }
  return undefined;
}

/** Turns what a person wrote into a ws(s) URL; relative paths need the page. */
function normalize(raw: string, location: { protocol: string; host: string } | undefined, what: string): string {
  const value = raw.trim();
  if (value.startsWith('/')) {
    if (!location)
      throw new EndpointError(
        `${what} is a path (${value}) but there is no page to resolve it against: give a full ws:// URL`,
      );
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${value}`;
  }
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new EndpointError(`${what} is not a URL: ${JSON.stringify(value)} (expected e.g. ws://localhost:3002/ws)`);
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new EndpointError(`${what} must use ws:, wss:, http: or https:, not ${u.protocol} (${value})`);
  }
  return u.toString();
}

export function resolveEndpoint(input: ResolveEndpointInput = {}): ResolvedEndpoint {
  const location = 'location' in input ? input.location : pageLocation();
  if (input.url !== undefined && input.url.trim() !== '') {
    return { url: normalize(input.url, location, 'the url option'), source: 'option' };
  }
  const env = 'envUrl' in input ? input.envUrl : envHeraldUrl();
  if (env !== undefined && env.trim() !== '') {
    return { url: normalize(env, location, 'NEXT_PUBLIC_HERALD_URL'), source: 'env' };
  }
  if (location) {
    return { url: normalize(input.path ?? '/ws', location, 'the same-origin path'), source: 'same-origin' };
  }
  throw new EndpointError(
    'no Herald endpoint: pass { url: "ws://host:3002/ws" } or set NEXT_PUBLIC_HERALD_URL (outside a browser page there is no same-origin /ws)',
  );
}

/** The http(s) URL of the same endpoint, for the diagnostic probe. */
export function probeUrlOf(wsUrl: string): string {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  return u.toString();
}
