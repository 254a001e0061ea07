import type { ResolvedEndpoint } from './endpoint.js';
import type { ProbeResult } from './probe.js';

/**
 * Turns what the client saw into one console message that names the cause and the fix. Pure: the client feeds it
 * the endpoint, the probe result and what the transport reported. Each cause has a stable code
 * (@herald/server/docs/deployment.md). Refusals after the socket opened are refusal.ts's.
 */
export type DiagnosisCause =
  /** Nothing answered an HTTP request at the endpoint. */
  | 'nothing_listening'
  /** A TCP server accepted but answered neither the upgrade nor a GET (e.g. a hung proxy). */
  | 'no_answer'
  /** Next.js answered the endpoint itself: no rewrite to Herald (the upgrade hangs in Next.js). */
  | 'nextjs_no_rewrite'
  /** A proxy (Next.js rewrite, nginx) answered 5xx: its upstream, Herald, is not reachable. */
  | 'upstream_down'
  /** Another HTTP server answered. */
  | 'not_herald'
  /** Herald refused the upgrade because of the page's Origin. */
  | 'origin_not_allowed'
  /** Herald answers the endpoint but refused the upgrade for another reason (shutting down, connection limit). */
  | 'upgrade_refused'
  /** Herald refused the connection token (close 3500 and the like). */
  | 'token_invalid'
  /** Herald said 109 (token expired) again right after a fresh token was fetched. */
  | 'token_expired'
  /** The connect command carried no token (error 101). */
  | 'token_missing'
  /** The app's token route failed. */
  | 'token_route'
  /** The token route says nobody is signed in (401/403). */
  | 'not_signed_in'
  /** Herald closed the connection with a terminal code (no reconnect). */
  | 'disconnected_by_server'
  /** Herald refused a subscription (102, 103, 107, 108, 109 twice in a row, ...): once per channel and code. */
  | 'subscribe_refused'
  /** Herald refused to renew a subscription (a refused subscription token refresh). */
  | 'refresh_refused'
  /** Herald refused a publish (103, 102, 107, 100, ...). */
  | 'publish_refused'
  /** Herald refused a presence request (108 presence off, 103). */
  | 'presence_refused'
  /** Herald refused a history request (108 history off, 103, 112). */
  | 'history_refused'
  /** Herald ended a subscription (unsubscribe 2000: the server API, or a refused token refresh). */
  | 'unsubscribed_by_server'
  /** A subscription's own getToken failed (the SDK retries). */
  | 'subscription_token_source';

export interface Diagnosis {
  cause: DiagnosisCause;
  /** The full console text, fix included. */
  message: string;
  /** A protocol code when one is known (3500, 101, 403, 102, ...). */
  code?: number;
  /** The channel, for a refusal of one channel's subscription, publish, presence or history. */
  channel?: string;
  /** The fix alone (also part of `message`), for a refusal of one channel. */
  fix?: string;
}

export interface DiagnosisContext {
  endpoint: ResolvedEndpoint;
  /** The page's origin (browser), for Origin and rewrite advice. */
  pageOrigin?: string | undefined;
  /** Milliseconds the client waited for the upgrade. */
  connectTimeoutMs: number;
}

export interface TransportFailure {
  /** 'connect timeout' or 'transport closed' (the SDK's words). */
  reason: string;
  /** The HTTP status of a refused upgrade, when the WebSocket implementation tells it (Node's `ws` does, browsers never). */
  httpStatus?: number | undefined;
}

const PREFIX = '[herald]';

function sourceText(e: ResolvedEndpoint): string {
  switch (e.source) {
    case 'option':
      return 'the url option';
    case 'env':
      return 'NEXT_PUBLIC_HERALD_URL';
    case 'same-origin':
      return 'same origin: no url option and no NEXT_PUBLIC_HERALD_URL';
  }
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '/ws';
  }
}

/** The exact snippets for the two ways out of the classic Next.js failure. */
export function nextRewriteAdvice(wsUrl: string, pageOrigin: string | undefined): string {
  const path = pathOf(wsUrl);
  const origin = pageOrigin ?? 'http://localhost:3000';
  return (
    `Fix it one of two ways:\n` +
    `  1. same origin: rewrite ${path} to Herald in next.config.mjs\n` +
    `       async rewrites() {\n` +
    `         return [{ source: '${path}', destination: 'http://127.0.0.1:3002/ws' }];\n` +
    `       },\n` +
    `  2. direct: build with NEXT_PUBLIC_HERALD_URL=ws://localhost:3002/ws and start Herald with HERALD_ALLOWED_ORIGINS=${origin}`
  );
}

export function diagnoseTransportFailure(
  ctx: DiagnosisContext,
  failure: TransportFailure,
  probe: ProbeResult,
): Diagnosis {
  const { url } = ctx.endpoint;
  const via = `${url} (chosen by ${sourceText(ctx.endpoint)})`;
  const origin = ctx.pageOrigin;
  switch (probe.kind) {
    case 'unreachable': {
      const crossOrigin = origin !== undefined && !sameHost(url, origin);
      return {
        cause: 'nothing_listening',
        message:
          `${PREFIX} Cannot reach Herald at ${via}: nothing is listening there (${probe.detail})` +
          (crossOrigin ? ', or a server that is not Herald answered without CORS headers' : '') +
          `. Start Herald (herald serve; WS_PORT, default 3002) or correct ` +
          (ctx.endpoint.source === 'env'
            ? 'NEXT_PUBLIC_HERALD_URL'
            : ctx.endpoint.source === 'option'
              ? 'the url option'
              : 'the proxy in front of this site') +
          '.',
      };
    }
    case 'timeout':
      return {
        cause: 'no_answer',
        message:
          `${PREFIX} ${via} accepts connections but answered neither the WebSocket upgrade (${failure.reason} after ` +
          `${ctx.connectTimeoutMs} ms) nor a plain GET (${probe.afterMs} ms). Something that is not Herald holds that ` +
          `port; point the client at Herald's /ws.`,
      };
    case 'other': {
      if (probe.server === 'nextjs' && probe.status < 500) {
        return {
          cause: 'nextjs_no_rewrite',
          message:
            `${PREFIX} Next.js answered ${via} instead of Herald (GET ${pathOf(url)} -> ${probe.status}): no rewrite ` +
            `sends ${pathOf(url)} to Herald, and Next.js leaves an unmatched WebSocket upgrade hanging. ` +
            nextRewriteAdvice(url, origin),
        };
      }
      if (probe.status >= 500) {
        const who =
          probe.server === 'nextjs'
            ? 'Next.js'
            : probe.server === 'nginx'
              ? 'nginx'
              : ctx.endpoint.source === 'same-origin'
                ? "This site's server (its Next.js rewrite or proxy)"
                : 'The server';
        return {
          cause: 'upstream_down',
          code: probe.status,
          message:
            `${PREFIX} ${who} answered ${via} with ${probe.status}: the proxy is there but Herald behind it is not ` +
            `reachable. Start Herald where the rewrite or proxy points (default http://127.0.0.1:3002/ws).`,
        };
      }
      return {
        cause: 'not_herald',
        code: probe.status,
        message:
          `${PREFIX} ${via} answered HTTP ${probe.status} but it is not Herald (no X-Herald-Version header` +
          (probe.poweredBy ? `; X-Powered-By: ${probe.poweredBy}` : '') +
          `). Point the client at Herald's WebSocket path (e.g. ws://localhost:3002/ws) or proxy that path to Herald.`,
      };
    }
    case 'herald': {
      const status = failure.httpStatus;
      if (probe.error === 'origin_not_allowed' || status === 403) {
        return {
          cause: 'origin_not_allowed',
          code: 403,
          message:
            `${PREFIX} Herald ${probe.version} at ${via} refused the WebSocket: the page's Origin` +
            (origin ? ` ${origin}` : '') +
            ` is not allowed (403 origin_not_allowed). Set HERALD_ALLOWED_ORIGINS=${origin ?? '<your app origin>'} ` +
            `on the Herald server (exact scheme://host:port, comma-separated).`,
        };
      }
      if (status !== undefined) {
        return {
          cause: 'upgrade_refused',
          code: status,
          message:
            `${PREFIX} Herald ${probe.version} at ${via} refused the WebSocket upgrade with HTTP ${status} ` +
            `(${status === 503 ? 'shutting down' : status === 429 ? 'too many connections from this address' : 'see the Herald log, "upgrade refused"'}).`,
        };
      }
      // A browser never shows the status of a refused upgrade; Herald answered the GET, so the upgrade itself was
      // refused, and the Origin check is by far the most common reason.
      return {
        cause: 'origin_not_allowed',
        message:
          `${PREFIX} Herald ${probe.version} answers at ${via} but refused the WebSocket upgrade. The usual cause is ` +
          `the Origin check: set HERALD_ALLOWED_ORIGINS=${origin ?? '<your app origin>'} on the Herald server ` +
          `(its log names the reason: "upgrade refused").`,
      };
    }
  }
}

function sameHost(wsUrl: string, origin: string): boolean {
  try {
    return new URL(wsUrl).host === new URL(origin).host;
  } catch {
    return false;
  }
}

/** A close or disconnect that came from Herald after the socket opened. */
export function diagnoseServerClose(ctx: DiagnosisContext, code: number, reason: string): Diagnosis | undefined {
  const via = ctx.endpoint.url;
  // The SDK turns a 101 error reply to connect into a terminal disconnect with that code.
  if (code === 101) return diagnoseConnectError(ctx, code, reason);
  if (code === 3500 || (/token/i.test(reason) && code >= 3500)) {
    return {
      cause: 'token_invalid',
      code,
      message:
        `${PREFIX} Herald at ${via} refused the connection token (${code} ${reason}). The token route and Herald ` +
        `must share one secret: HERALD_TOKEN_SECRET (or NEXTAUTH_SECRET) on Herald = the secret given to ` +
        `createTokenRoute / mintToken; audience and issuer must match too.`,
    };
  }
  if ((code >= 3500 && code < 4000) || (code >= 4500 && code < 5000)) {
    return {
      cause: 'disconnected_by_server',
      code,
      message: `${PREFIX} Herald at ${via} closed the connection for good (${code} ${reason}); the client will not reconnect.`,
    };
  }
  return undefined;
}

/** 109 twice in a row: the token source hands out tokens Herald already considers expired. */
export function diagnoseExpiredAgain(ctx: DiagnosisContext, message: string): Diagnosis {
  return {
    cause: 'token_expired',
    code: 109,
    message:
      `${PREFIX} Herald at ${ctx.endpoint.url} says the token expired (109 ${message}) even after a fresh one was ` +
      `fetched: the token source mints tokens that are already expired for Herald. Check that the app's and ` +
      `Herald's clocks agree and that ttlSeconds is not tiny (default 60).`,
  };
}

/** An error reply to the connect command. A single 109 (expired) is not here: the SDK fetches a new token itself. */
export function diagnoseConnectError(ctx: DiagnosisContext, code: number, message: string): Diagnosis | undefined {
  if (code === 101) {
    return {
      cause: 'token_missing',
      code,
      message:
        `${PREFIX} Herald at ${ctx.endpoint.url} answered 101 unauthorized: the connection carried no token. ` +
        `Give the client a token route (tokenUrl, default /api/herald/token) or a getToken function.`,
    };
  }
  if (code >= 100 && code !== 109 && code !== 100 && code !== 111) {
    return {
      cause: 'disconnected_by_server',
      code,
      message: `${PREFIX} Herald at ${ctx.endpoint.url} refused to connect: ${code} ${message}.`,
    };
  }
  return undefined;
}

export function diagnoseTokenRoute(tokenUrl: string, status: number | undefined, detail: string): Diagnosis {
  if (status === 401 || status === 403) {
    return {
      cause: 'not_signed_in',
      code: status,
      message: `${PREFIX} The token route ${tokenUrl} answered ${status}: nobody is signed in, so the client stays disconnected. Sign in, then connect again.`,
    };
  }
  if (status === 404) {
    return {
      cause: 'token_route',
      code: status,
      message:
        `${PREFIX} The token route ${tokenUrl} does not exist (404). Add app/api/herald/token/route.ts:\n` +
        `  import { createTokenRoute } from '@herald/next';\n` +
        `  export const GET = createTokenRoute({ secret: process.env.HERALD_TOKEN_SECRET!, getSession: () => getServerSession(authOptions) });`,
    };
  }
  return {
    cause: 'token_route',
    ...(status !== undefined ? { code: status } : {}),
    message:
      `${PREFIX} Fetching a connection token from ${tokenUrl} failed (` +
      (status !== undefined ? `HTTP ${status}${detail ? `: ${detail}` : ''}` : detail) +
      '); the client retries with backoff.',
  };
}

/**
 * The terminal-side follow-up: `herald doctor` walks the same path step by step (TCP, HTTP, upgrade, token, round
 * trip) and prints the fix for the first broken step (@herald/server/docs/doctor.md).
 */
export function withDoctorHint(d: Diagnosis, ctx: DiagnosisContext): Diagnosis {
  if (d.cause === 'not_signed_in' || d.cause === 'token_route') return d;
  const origin = ctx.pageOrigin ? ` --origin ${ctx.pageOrigin}` : '';
  return {
    ...d,
    message: `${d.message}\n${PREFIX} Check every step from a terminal: npx herald doctor ${ctx.endpoint.url}${origin} (@herald/server/docs/doctor.md)`,
  };
}
