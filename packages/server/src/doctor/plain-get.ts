/**
 * Step 2: a plain HTTP GET of the endpoint, as a page's fetch would send it. Herald answers its WebSocket paths
 * with 426 and the X-Herald-Version marker, so the answer tells the right server from a wrong one, and a
 * missing answer tells the hang of an unmatched path behind Next.js.
 */
import type { Finding, Target } from './finding.js';
import { pathOnly } from './finding.js';
import { directUrlSnippet, nextRewriteSnippet } from './fixes.js';
import type { ExchangeOutcome } from './http-wire.js';
import {
  bodySnippet,
  heraldVersionOf,
  isBareInternalServerError,
  isHeraldBody,
  nextjsEvidence,
  serverName,
} from './servers.js';

export interface PlainGetObservation {
  outcome: ExchangeOutcome;
  timeoutMs: number;
  /** How many times the GET was sent (a silent server is asked twice). @default 1 */
  asked?: number;
  /** ws:// against a port that answered nothing: did a TLS handshake succeed there? */
  tlsAnswered?: boolean;
  /** Where Herald was found when something else answers on the URL's port. */
  heraldNearby?: { url: string; version: string };
  /** The Origin a page would send (for the direct-connection alternative). */
  pageOrigin?: string;
  /** When Herald answered: what answers in front of it, and Herald's own address when found. */
  behind?: HeraldBehind;
}

/** Next.js (a rewrite, or a custom server that hands the path to Herald) or another proxy in front of Herald. */
export interface HeraldBehind {
  kind: 'nextjs' | 'proxy';
  /** What showed it: a header of the answer, or of Next's 404 for another path of the same origin. */
  evidence: string;
  /** Herald's own address (no proxy in between), and how it was found. */
  herald?: { url: string; version: string; from: string };
}

function tlsCertificateProblem(code: string): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME/.test(code);
}

/** Herald's http:// base for a rewrite destination: the nearby Herald when found, else its default port. */
function heraldBase(nearby: { url: string } | undefined): string {
  if (!nearby) return 'http://127.0.0.1:3002';
  const u = new URL(nearby.url.replace(/^ws/, 'http'));
  return `${u.protocol}//${u.hostname === 'localhost' ? '127.0.0.1' : u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
}

export function interpretPlainGet(t: Target, o: PlainGetObservation): Finding {
  const out = o.outcome;
  const url = t.httpUrl;
  // A URL without a path gets Herald's usual one in the snippets.
  const path = pathOnly(t.path) === '/' ? '/ws' : pathOnly(t.path);
  switch (out.kind) {
    case 'tls_error': {
      if (tlsCertificateProblem(out.code)) {
        return {
          step: 'http',
          status: 'fail',
          code: 'tls_certificate',
          saw: `the TLS handshake with ${t.host}:${t.port} failed: ${out.code} (${out.message})`,
          means:
            'The server speaks TLS but its certificate is not trusted for this name; browsers refuse it the same way.',
          fix: 'Serve a certificate valid for this host name (for local development: mkcert, or use ws:// without TLS).',
          details: { code: out.code },
        };
      }
      return {
        step: 'http',
        status: 'fail',
        code: 'tls_on_plain_port',
        saw: `wss:// on ${t.host}:${t.port}: the TLS handshake failed (${out.code}: ${out.message})`,
        means: 'This port speaks plain HTTP, not TLS: Herald itself has no TLS; TLS ends at a proxy in front of it.',
        fix: `Use ${t.wsUrl.replace(/^wss:/, 'ws:')} here, or connect with wss:// to the TLS proxy (nginx, Caddy) that forwards to Herald.`,
        details: { code: out.code },
      };
    }
    case 'connect_error':
      return {
        step: 'http',
        status: 'fail',
        code: 'http_connect_error',
        saw: `could not reconnect to ${t.host}:${t.port}: ${out.code}`,
        means: 'The port accepted a connection in step 1 but not now: the server is restarting or overloaded.',
        fix: 'Run the doctor again; if it persists, look at the server log.',
      };
    case 'no_answer':
      return {
        step: 'http',
        status: 'fail',
        code: 'no_answer',
        saw:
          `${t.host}:${t.port} accepted the TCP connection but sent nothing in ${o.timeoutMs} ms to GET ${pathOnly(t.path)}` +
          ((o.asked ?? 1) > 1 ? ` (asked ${o.asked} times)` : ''),
        means:
          'A server that takes the connection and never answers: the hang of an unmatched path behind Next.js ' +
          '(Next leaves such requests for a custom server), a process paused in a debugger, or a wrong port of some ' +
          'other service. In the browser the WebSocket stays CONNECTING with no event at all. (A `next dev` that just ' +
          'started may still be compiling its first page: run the doctor again, or raise --timeout.)',
        fix:
          `Check what runs on port ${t.port} (lsof -i :${t.port}). If it is Next.js, add the rewrite:\n` +
          nextRewriteSnippet(path, heraldBase(o.heraldNearby)) +
          `\nor connect the browser straight to Herald:\n${directUrlSnippet(o.heraldNearby?.url ?? 'ws://localhost:3002/ws', o.pageOrigin)}`,
      };
    case 'closed':
    case 'not_http': {
      const raw = out.kind === 'not_http' ? out.raw : '';
      if (!t.secure && o.tlsAnswered) {
        return {
          step: 'http',
          status: 'fail',
          code: 'plain_on_tls_port',
          saw: `ws:// on ${t.host}:${t.port}: the server closed the connection without an HTTP answer, and a TLS handshake there succeeds`,
          means: 'This port speaks TLS: the URL must use wss://.',
          fix: `Use ${t.wsUrl.replace(/^ws:/, 'wss:')}`,
        };
      }
      if (/Internal Server Error/i.test(raw)) {
        return {
          step: 'http',
          status: 'fail',
          code: 'proxy_upstream_down',
          saw: `raw "Internal Server Error" bytes instead of an HTTP answer from ${t.host}:${t.port}`,
          means:
            'Next.js has a rewrite for this path but cannot reach its destination (its log shows "Failed to proxy ... ECONNREFUSED").',
          fix: 'Start Herald (npx herald serve), or fix the port in the rewrite destination in next.config.',
        };
      }
      return {
        step: 'http',
        status: 'fail',
        code: 'not_http',
        saw:
          out.kind === 'closed'
            ? `${t.host}:${t.port} closed the connection without answering GET ${pathOnly(t.path)}`
            : `${t.host}:${t.port} answered bytes that are not HTTP: ${JSON.stringify(raw.slice(0, 80))}`,
        means: 'Something other than a web server listens on this port (a database, another protocol).',
        fix: `Check what runs on port ${t.port} (lsof -i :${t.port}) and point the URL at Herald (default ws://localhost:3002/ws).`,
      };
    }
    case 'response':
      break;
  }
  const r = out.response;
  const version = heraldVersionOf(r);
  const next = nextjsEvidence(r);
  const server = serverName(r);
  const details: Record<string, unknown> = { status: r.status, headers: r.headers, ms: out.ms };
  if (version) {
    const b = o.behind;
    let via = '';
    if (b?.kind === 'nextjs' || next) via = ' through Next.js';
    else if (server) via = ` through ${server}`;
    const notes: string[] = [];
    if (b?.kind === 'nextjs' && !next) notes.push(b.evidence);
    if (b?.herald) notes.push(`Herald itself: ${b.herald.url}, ${b.herald.from}`);
    return {
      step: 'http',
      status: 'pass',
      code: 'herald_ok',
      saw:
        `GET ${url} answered ${r.status} with X-Herald-Version: ${version}${via} (${out.ms} ms)` +
        (notes.length > 0 ? `; ${notes.join('; ')}` : ''),
      details: { ...details, version, ...(b ? { behind: b } : {}) },
    };
  }
  if (isHeraldBody(r)) {
    return {
      step: 'http',
      status: 'fail',
      code: 'herald_wrong_path',
      saw: `Herald answers on ${t.host}:${t.port}, but GET ${pathOnly(t.path)} is ${r.status}: ${bodySnippet(r)}`,
      means: `${pathOnly(t.path)} is not one of Herald's WebSocket paths (they are /ws and /connection/websocket).`,
      fix: `Use ${t.wsUrl.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/]+)\/[^]*$/i, '$1/ws')}`,
      details,
    };
  }
  if (next) {
    const base = heraldBase(o.heraldNearby);
    const heraldUrl = o.heraldNearby?.url ?? 'ws://localhost:3002/ws';
    if (r.status >= 500) {
      return {
        step: 'http',
        status: 'fail',
        code: 'nextjs_upstream_down',
        saw: `GET ${url} answered ${r.status} from Next.js (${next})`,
        means:
          'Next.js has a rewrite for this path but cannot reach its destination (its log shows "Failed to proxy ... ECONNREFUSED").',
        fix: o.heraldNearby
          ? `Herald is at ${heraldUrl}: make the rewrite's destination ${base}${path}`
          : 'Start Herald (npx herald serve), then check the destination port of the rewrite in next.config.',
        details,
      };
    }
    return {
      step: 'http',
      status: 'fail',
      code: 'nextjs_no_rewrite',
      saw: `GET ${url} answered ${r.status} from Next.js (${next}), not Herald`,
      means:
        (pathOnly(t.path) === '/' ? "The URL has no path; Herald's endpoint is /ws. " : '') +
        `The URL points at the Next.js server, which has no rewrite for ${path}. ` +
        (o.heraldNearby ? `Herald is at ${heraldUrl}. ` : '') +
        'In the browser this looks like an opaque error and close 1006 (or, for the upgrade, a socket that hangs).',
      fix:
        `Add a rewrite so Next.js proxies the upgrade to Herald:\n${nextRewriteSnippet(path, base)}\n` +
        `or connect the browser straight to Herald:\n${directUrlSnippet(heraldUrl, o.pageOrigin)}`,
      details: { ...details, nextjs: next, heraldNearby: o.heraldNearby },
    };
  }
  if (isBareInternalServerError(r)) {
    return {
      step: 'http',
      status: 'fail',
      code: 'proxy_upstream_down',
      saw: `GET ${url} answered a bare 500 "Internal Server Error" (no Content-Type)`,
      means:
        'This is how Next.js answers when a rewrite\'s destination does not answer (its log shows "Failed to proxy ... ECONNREFUSED"): ' +
        'the rewrite exists, Herald is not where it points.',
      fix: o.heraldNearby
        ? `Herald is at ${o.heraldNearby.url}: make the rewrite's destination ${heraldBase(o.heraldNearby)}${path} in next.config.`
        : 'Start Herald (npx herald serve), or fix the destination port of the rewrite in next.config.',
      details,
    };
  }
  if ([502, 503, 504].includes(r.status)) {
    return {
      step: 'http',
      status: 'fail',
      code: 'proxy_upstream_down',
      saw: `GET ${url} answered ${r.status} ${r.statusText}${server ? ` from ${server}` : ''}: ${bodySnippet(r)}`,
      means: 'A proxy answers on this port but cannot reach the server behind it.',
      fix: 'Start Herald (npx herald serve), or fix the upstream address in the proxy (proxy_pass http://127.0.0.1:3002).',
      details,
    };
  }
  return {
    step: 'http',
    status: 'fail',
    code: 'wrong_server',
    saw: `GET ${url} answered ${r.status} ${r.statusText}${server ? ` (Server: ${server})` : ''} without the X-Herald-Version marker: ${bodySnippet(r)}`,
    means:
      'Something other than Herald answers this URL' +
      (o.heraldNearby ? `; Herald is at ${o.heraldNearby.url}.` : '.') +
      (server ? ` If ${server} is a proxy, it does not route ${path} to Herald.` : ''),
    fix: o.heraldNearby
      ? `Point the client at ${o.heraldNearby.url}, or route ${path} to it in the proxy.`
      : `Point the client at Herald's URL (default ws://localhost:3002/ws), or route ${path} to Herald in the proxy.`,
    details,
  };
}
