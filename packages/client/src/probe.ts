import { readBodyHead } from './body.js';
import { probeUrlOf } from './endpoint.js';

/**
 * One plain HTTP GET of the WebSocket endpoint, made after a connection failed before it opened. Page JavaScript
 * cannot see why an upgrade failed (a 404, a 403, a refused port and a non-WebSocket server all end in close 1006),
 * but Herald answers a plain GET on its WebSocket path with 426, an `X-Herald-Version` header and CORS headers, so
 * one CORS fetch tells "Herald is there", "something else is there" and "nothing is there" apart.
 */
export type ProbeResult =
  /** The request failed: connection refused, DNS, TLS, or (in a browser) a non-Herald server without CORS headers. */
  | { kind: 'unreachable'; detail: string }
  /** Something accepted the connection but sent no HTTP answer in time. */
  | { kind: 'timeout'; afterMs: number }
  /** Herald answered (the marker header is present). */
  | { kind: 'herald'; status: number; version: string; error?: string }
  /** Some other HTTP server answered. */
  | { kind: 'other'; status: number; server: 'nextjs' | 'nginx' | 'unknown'; poweredBy?: string };

export interface ProbeOptions {
  /** @default 3000 */
  timeoutMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

const BODY_SNIFF_CHARS = 4096;
/**
 * The most of the answer's body the probe reads: its head only carries hints (Next.js markers, an nginx page), and
 * whatever answers may stream without end, so the rest is cancelled unread.
 */
export const PROBE_BODY_MAX_BYTES = 64 * 1024;

function looksLikeNext(poweredBy: string | null, body: string): boolean {
  return (poweredBy ?? '').toLowerCase().includes('next.js') || body.includes('/_next/') || body.includes('__next');
}

export async function probeEndpoint(wsUrl: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const timeoutMs = options.timeoutMs ?? 3000;
  const doFetch = options.fetch ?? globalThis.fetch;
  const ctrl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctrl.abort();
  }, timeoutMs);
  try {
    const res = await doFetch(probeUrlOf(wsUrl), {
      method: 'GET',
      mode: 'cors',
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'manual',
      signal: ctrl.signal,
    });
    const version = res.headers.get('x-herald-version');
    let body = '';
    try {
      body = (await readBodyHead(res, PROBE_BODY_MAX_BYTES)).slice(0, BODY_SNIFF_CHARS);
    } catch {
      // the body is only sniffed for hints
    }
    if (version) {
      const error = res.headers.get('x-herald-error') ?? undefined;
      return error
        ? { kind: 'herald', status: res.status, version, error }
        : { kind: 'herald', status: res.status, version };
    }
    const poweredBy = res.headers.get('x-powered-by');
    const server = looksLikeNext(poweredBy, body)
      ? 'nextjs'
      : (res.headers.get('server') ?? '').toLowerCase().startsWith('nginx') || body.includes('<center>nginx')
        ? 'nginx'
        : 'unknown';
    return poweredBy
      ? { kind: 'other', status: res.status, server, poweredBy }
      : { kind: 'other', status: res.status, server };
  } catch (err) {
    if (timedOut) return { kind: 'timeout', afterMs: timeoutMs };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
    return { kind: 'unreachable', detail };
  } finally {
    clearTimeout(timer);
  }
}
