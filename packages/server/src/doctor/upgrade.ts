/**
 * Step 3: the WebSocket upgrade, with the Origin a page would send. Herald marks every answer of its own
 * (X-Herald-Version; X-Herald-Error on a refused upgrade), so a refusal by Herald, a proxy that answers itself,
 * and a proxy that dropped the Upgrade header on the way (Herald then answers 426 as to a plain GET) are told apart.
 */
import type { Finding, Target } from './finding.js';
import { pathOnly } from './finding.js';
import { allowedOriginsLine, nextRewriteSnippet, nginxSnippet } from './fixes.js';
import type { ExchangeOutcome } from './http-wire.js';
import { bodySnippet, heraldVersionOf, isNginx, nextjsEvidence, serverName } from './servers.js';
import { expectedAccept } from './ws-frames.js';

export interface UpgradeObservation {
  outcome: ExchangeOutcome;
  key: string;
  origin: string | undefined;
  timeoutMs: number;
  /** HERALD_ALLOWED_ORIGINS as this shell sees it (to print the whole line to set). */
  allowedOriginsEnv?: string;
}

export function upgradeRequest(t: Target, key: string, origin: string | undefined): string {
  const hostHeader = t.port === t.defaultPort ? t.host : `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
  return (
    `GET ${t.path} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: herald-doctor\r\n` +
    'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
    `Sec-WebSocket-Key: ${key}\r\n` +
    (origin ? `Origin: ${origin}\r\n` : '') +
    '\r\n'
  );
}

function messageOf(body: string): string | undefined {
  try {
    const v = JSON.parse(body) as { message?: unknown };
    return typeof v.message === 'string' ? v.message : undefined;
  } catch {
    return undefined;
  }
}

export function interpretUpgrade(t: Target, o: UpgradeObservation): Finding {
  const out = o.outcome;
  const path = pathOnly(t.path);
  const sent = o.origin ? `Origin: ${o.origin}` : 'no Origin';
  if (out.kind === 'no_answer') {
    return {
      step: 'upgrade',
      status: 'fail',
      code: 'upgrade_hang',
      saw: `the upgrade request (${sent}) got no answer in ${o.timeoutMs} ms, although a plain GET was answered`,
      means:
        'The server keeps upgrade requests it does not handle open forever: Next.js does this for a path no rewrite ' +
        'matches (it leaves the upgrade to a custom server). The browser socket stays CONNECTING with no event.',
      fix:
        `Add a rewrite for ${path} in next.config:\n${nextRewriteSnippet(path, 'http://127.0.0.1:3002')}\n` +
        'With a custom server, hand the upgrade for this path to herald.handleUpgrade(req, socket, head).',
    };
  }
  if (out.kind === 'not_http' && /Internal Server Error/i.test(out.raw)) {
    return {
      step: 'upgrade',
      status: 'fail',
      code: 'proxy_upstream_down',
      saw: `the upgrade was answered with raw "Internal Server Error" bytes, not HTTP`,
      means:
        'This is Next.js proxying a rewrite to a destination that does not answer (its log shows "Failed to proxy ... ECONNREFUSED").',
      fix: 'Start Herald (npx herald serve), or fix the destination port of the rewrite in next.config.',
    };
  }
  if (out.kind !== 'response') {
    const what =
      out.kind === 'not_http'
        ? `bytes that are not HTTP: ${JSON.stringify(out.raw.slice(0, 80))}`
        : out.kind === 'closed'
          ? 'a closed connection'
          : `${out.code}: ${out.message}`;
    return {
      step: 'upgrade',
      status: 'fail',
      code: 'upgrade_failed',
      saw: `the upgrade request (${sent}) got ${what}`,
      means: 'Something between the client and Herald ends WebSocket upgrades.',
      fix: `If a proxy is in front of Herald, let it pass upgrades, e.g. nginx:\n${nginxSnippet(path, 'http://127.0.0.1:3002')}`,
    };
  }
  const r = out.response;
  const version = heraldVersionOf(r);
  const heraldError = r.headers['x-herald-error'];
  const server = serverName(r);
  const details: Record<string, unknown> = { status: r.status, headers: r.headers, origin: o.origin ?? null };
  if (r.status === 101) {
    const accept = r.headers['sec-websocket-accept'];
    if (accept !== expectedAccept(o.key)) {
      return {
        step: 'upgrade',
        status: 'fail',
        code: 'bad_accept',
        saw: `101 with Sec-WebSocket-Accept ${JSON.stringify(accept ?? null)}, not the value for the key sent`,
        means:
          'Something answered the upgrade that is not a conforming WebSocket server; browsers drop such a connection.',
        fix: 'Point the URL at Herald, not at a proxy that fakes upgrades.',
        details,
      };
    }
    return {
      step: 'upgrade',
      status: 'pass',
      code: 'upgrade_ok',
      saw: `101 Switching Protocols (${sent}, ${out.ms} ms)`,
      details,
    };
  }
  if (heraldError === 'origin_not_allowed') {
    const origin = o.origin ?? '(none)';
    // Without an allow-list Herald compares Origin with Host; a proxy that sends its upstream's Host breaks that.
    const hostMismatch = /does not match this server's host/.test(r.body);
    const proxy = server && !/herald/i.test(server) ? server : undefined;
    return {
      step: 'upgrade',
      status: 'fail',
      code: 'origin_not_allowed',
      saw: `Herald refused the upgrade with ${r.status}: sent Origin ${origin}; it said: ${messageOf(r.body) ?? bodySnippet(r)}`,
      means:
        "Browsers send the page's origin with every WebSocket; Herald checks it against HERALD_ALLOWED_ORIGINS before " +
        "the upgrade (WebSockets have no CORS, so this is what stops other sites from using your users' cookies).",
      fix: o.origin
        ? `Add the page's origin to Herald's environment and restart it:\n${allowedOriginsLine(o.origin, o.allowedOriginsEnv)}` +
          (hostMismatch && proxy
            ? `\nor, since ${proxy} is in between and rewrites Host, let it pass the browser's Host: proxy_set_header Host $http_host;`
            : '')
        : 'Send the connection from a page on an allowed origin (HERALD_ALLOWED_ORIGINS).',
      details,
    };
  }
  if (heraldError === 'connection_limit' || (version && r.status === 429)) {
    return {
      step: 'upgrade',
      status: 'fail',
      code: 'connection_limit',
      saw: `Herald refused the upgrade with ${r.status}: ${messageOf(r.body) ?? bodySnippet(r)}`,
      means: 'Too many connections from this address (HERALD_IP_CONNECTION_LIMIT).',
      fix: 'Raise HERALD_IP_CONNECTION_LIMIT (0 = no limit), or close stale connections.',
      details,
    };
  }
  if (version && r.status === 503) {
    return {
      step: 'upgrade',
      status: 'fail',
      code: 'server_draining',
      saw: `Herald refused the upgrade with 503: ${messageOf(r.body) ?? bodySnippet(r)}`,
      means: 'This Herald is shutting down and takes no new connections.',
      fix: 'Wait for the restart to finish, or send traffic to another node.',
      details,
    };
  }
  if (version && !heraldError) {
    // Herald's answer to a request without Upgrade: the header was removed on the way.
    const proxy =
      server && !/herald/i.test(server) ? server : isNginx(r) ? 'nginx' : nextjsEvidence(r) ? 'Next.js' : undefined;
    return {
      step: 'upgrade',
      status: 'fail',
      code: 'proxy_strips_upgrade',
      saw:
        `the upgrade request reached Herald ${version} as a plain GET: it answered ${r.status} (its answer when the Upgrade header is missing)` +
        (proxy ? `; a proxy is in between (Server: ${proxy})` : ''),
      means:
        'A proxy between the client and Herald drops the Upgrade and Connection headers. nginx does unless told to ' +
        'pass them: it speaks HTTP/1.0 to upstreams and removes hop-by-hop headers.',
      fix:
        `In nginx, for the WebSocket location:\n${nginxSnippet(path, 'http://127.0.0.1:3002')}\n` +
        'Other proxies: enable WebSocket support for this route (Caddy and Traefik pass upgrades by default).',
      details,
    };
  }
  if (version) {
    return {
      step: 'upgrade',
      status: 'fail',
      code: 'upgrade_refused',
      saw: `Herald refused the upgrade with ${r.status} (${heraldError}): ${messageOf(r.body) ?? bodySnippet(r)}`,
      means: 'Herald turned the connection away before the WebSocket opened.',
      fix: 'See the message above and @herald/server/docs/doctor.md.',
      details,
    };
  }
  if (r.status === 400 || r.status === 426) {
    return {
      step: 'upgrade',
      status: 'fail',
      code: 'proxy_refuses_upgrade',
      saw: `${r.status} ${r.statusText} to the upgrade${server ? ` from ${server}` : ''}, without Herald's marker: ${bodySnippet(r)}`,
      means: 'A proxy answered the upgrade itself: it does not forward WebSocket upgrades to Herald.',
      fix: `Let the proxy pass upgrades, e.g. nginx:\n${nginxSnippet(path, 'http://127.0.0.1:3002')}`,
      details,
    };
  }
  if (r.status === 403) {
    return {
      step: 'upgrade',
      status: 'fail',
      code: 'forbidden_by_proxy',
      saw: `403 to the upgrade (${sent})${server ? ` from ${server}` : ''}, without Herald's marker: ${bodySnippet(r)}`,
      means: 'Something in front of Herald (a proxy, WAF or auth layer) refuses the request.',
      fix: 'Allow WebSocket upgrades on this path in that layer.',
      details,
    };
  }
  return {
    step: 'upgrade',
    status: 'fail',
    code: 'upgrade_refused',
    saw: `${r.status} ${r.statusText} to the upgrade${server ? ` from ${server}` : ''}: ${bodySnippet(r)}`,
    means: 'The upgrade was answered, not accepted, by something that is not Herald.',
    fix: `Route ${path} to Herald with WebSocket support.`,
    details,
  };
}
