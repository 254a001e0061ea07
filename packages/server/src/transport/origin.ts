/**
 * Origin policy, checked before the upgrade (WebSockets have no CORS: a page on any site can open a socket and
 * the browser sends its cookies). Pure function of the request headers.
 */
export interface OriginDecision {
  ok: boolean;
  /** Why it was refused, naming the variable to set. */
  message?: string;
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return undefined;
  }
}

export function checkOrigin(
  origin: string | undefined,
  headers: { host?: string; forwardedHost?: string },
  allowed: readonly string[] | undefined,
  requireOrigin: boolean,
): OriginDecision {
  if (origin === undefined || origin === '') {
    if (requireOrigin) {
      return {
        ok: false,
        message:
          'Origin header missing: cookie-authenticated connections must come from a browser page on an allowed origin (HERALD_ALLOWED_ORIGINS)',
      };
    }
    return { ok: true };
  }
  if (allowed && allowed.length > 0) {
    if (allowed.includes('*') || allowed.includes(origin.replace(/\/$/, ''))) return { ok: true };
    return {
      ok: false,
      message: `Origin ${origin} is not allowed. Add it to HERALD_ALLOWED_ORIGINS (comma-separated), e.g. HERALD_ALLOWED_ORIGINS=${origin}`,
    };
  }
  const oh = hostOf(origin);
  const candidates = [headers.host, ...(headers.forwardedHost ?? '').split(',')]
    .map((h) => h?.trim().toLowerCase())
    .filter(Boolean);
  if (oh && candidates.includes(oh)) return { ok: true };
  return {
    ok: false,
    message: `Origin ${origin} does not match this server's host (Host: ${headers.host ?? 'none'}, X-Forwarded-Host: ${headers.forwardedHost || 'none'}) and HERALD_ALLOWED_ORIGINS is not set. Set HERALD_ALLOWED_ORIGINS=${origin} to allow the page's origin.`,
  };
}

/** The request headers the Origin policy reads (Node's IncomingHttpHeaders fits). */
export type OriginHeaders = Record<string, string | string[] | undefined>;

/**
 * The one Origin check for every browser-reachable entry point (WebSocket upgrades, HTTP-streaming and SSE, the
 * emulation endpoint, an insecure HTTP API): Origin against Host and X-Forwarded-Host, or the allowlist.
 * `requireOrigin`: refuse requests without Origin; `cookieRequiresOrigin`: refuse those that carry a Cookie but no Origin.
 */
export function checkRequestOrigin(
  headers: OriginHeaders,
  allowed: readonly string[] | undefined,
  opts: { requireOrigin?: boolean; cookieRequiresOrigin?: boolean } = {},
): OriginDecision {
  const origin = headers.origin;
  const host = headers.host;
  const fwd = headers['x-forwarded-host'];
  return checkOrigin(
    typeof origin === 'string' ? origin : undefined,
    { host: typeof host === 'string' ? host : undefined, forwardedHost: Array.isArray(fwd) ? fwd.join(',') : fwd },
    allowed,
    opts.requireOrigin === true || (opts.cookieRequiresOrigin === true && headers.cookie !== undefined),
  );
}
