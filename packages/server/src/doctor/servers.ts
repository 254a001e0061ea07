/** Recognising who answered, from headers and body: Herald, Next.js, a named proxy, or something else. */
import type { HttpResponse } from './http-wire.js';

export function heraldVersionOf(r: HttpResponse): string | undefined {
  return r.headers['x-herald-version'];
}

/** A Herald answer without the marker header: its JSON 404 for a path that is not one of its endpoints. */
export function isHeraldBody(r: HttpResponse): boolean {
  return /"server"\s*:\s*"herald"/.test(r.body.slice(0, 2000));
}

/**
 * Next.js answers (dev, start, standalone) carry at least one of: `X-Powered-By: Next.js`, an `x-nextjs-*`
 * header, `Vary: RSC, Next-Router-State-Tree, ...`, or HTML that loads from /_next/.
 */
export function nextjsEvidence(r: HttpResponse): string | undefined {
  const h = r.headers;
  if (/next\.js/i.test(h['x-powered-by'] ?? '')) return `X-Powered-By: ${h['x-powered-by']}`;
  const nextHeader = Object.keys(h).find((k) => k.startsWith('x-nextjs-'));
  if (nextHeader) return `${nextHeader}: ${h[nextHeader]}`;
  if (/\bRSC\b|Next-Router/i.test(h.vary ?? '')) return `Vary: ${h.vary}`;
  const body = r.body.slice(0, 200_000);
  if (/\/_next\/(static|webpack|image)|__next_f|id="__next"|__NEXT_DATA__/.test(body))
    return 'a page that loads /_next/ assets';
  return undefined;
}

/** "nginx/1.22.1", "Caddy", ... from the Server header, for naming the proxy in a diagnosis. */
export function serverName(r: HttpResponse): string | undefined {
  const s = r.headers.server;
  return s && s.trim() !== '' ? s.trim() : undefined;
}

export function isNginx(r: HttpResponse): boolean {
  return /nginx|openresty/i.test(r.headers.server ?? '') || /<center>nginx/i.test(r.body);
}

/** First line of the body, for "what it saw" (bodies can be whole HTML pages). */
export function bodySnippet(r: HttpResponse, max = 120): string {
  const text = r.body.replace(/\s+/g, ' ').trim();
  if (text === '') return '(empty body)';
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/**
 * Next.js's answer when a rewrite's destination refuses the connection: a bare 500 "Internal Server Error" with no
 * Content-Type and none of Next's own headers (next 16.4 dev; its log shows "Failed to proxy ... ECONNREFUSED").
 */
export function isBareInternalServerError(r: HttpResponse): boolean {
  return r.status === 500 && r.body.trim() === 'Internal Server Error' && r.headers['content-type'] === undefined;
}
