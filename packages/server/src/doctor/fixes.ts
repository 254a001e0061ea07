/** The config snippets the doctor prints as fixes, in one place so docs/doctor.md and the tests match them. */

/** next.config rewrite: Next.js proxies the WebSocket upgrade to Herald (verified in next 14, 15 and 16). */
export function nextRewriteSnippet(path: string, heraldHttpBase: string): string {
  return [
    `// next.config.js (or .mjs / .ts): Next.js proxies the WebSocket upgrade to Herald`,
    `module.exports = {`,
    `  async rewrites() {`,
    `    return [{ source: '${path}', destination: '${heraldHttpBase}${path}' }];`,
    `  },`,
    `};`,
  ].join('\n');
}

/** Connecting the browser straight to Herald instead (then the page's Origin must be allowed). */
export function directUrlSnippet(heraldWsUrl: string, pageOrigin: string | undefined): string {
  return [
    `# .env.local of the Next.js app: the browser connects straight to Herald`,
    `NEXT_PUBLIC_HERALD_URL=${heraldWsUrl}`,
    `# and in Herald's environment, the page's origin:`,
    `HERALD_ALLOWED_ORIGINS=${pageOrigin ?? 'http://localhost:3000'}`,
  ].join('\n');
}

export function nginxSnippet(path: string, upstream: string): string {
  return [
    `location ${path} {`,
    `    proxy_pass ${upstream};`,
    `    proxy_http_version 1.1;`,
    `    proxy_set_header Upgrade $http_upgrade;`,
    `    proxy_set_header Connection "upgrade";`,
    `    proxy_set_header Host $http_host;   # the browser's Host, port included: Herald compares Origin with it`,
    `    proxy_read_timeout 1h;   # nginx closes idle proxied sockets after 60 s by default`,
    `}`,
  ].join('\n');
}

/** The allow-list line with `origin` added to what is already configured (when the doctor can see it). */
export function allowedOriginsLine(origin: string, current: string | undefined): string {
  const list = (current ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== origin);
  return `HERALD_ALLOWED_ORIGINS=${[...list, origin].join(',')}`;
}
