// Herald's config for the example: herald.config.json (the chat namespace) plus what depends on where the app runs.
// Used by scripts/common.mjs (dev, start) and by the e2e tests, so both run Herald with the same file.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * `proxy` (HERALD_AUTH=proxy, `npm run dev -- --proxy`): Herald asks the app instead of checking a token.
 *   - connect proxy: POST /api/herald/proxy/connect with the browser's Cookie header (the only header forwarded), so
 *     the app reads the NextAuth session and answers the user id, or refuses a signed-out visitor;
 *   - publish proxy on the `chat` namespace: the browser publishes { text } through Herald; the app validates it,
 *     stores it and answers the stored message, which Herald then delivers;
 *   - rpc proxy for methods without a namespace (`online`: who is in chat:lobby's presence).
 * Every call carries X-Herald-Proxy-Secret, which the route checks (createProxyHandlers' `secret`).
 */
export function heraldConfig({ appPort, webhookSecret, proxy = false, proxySecret, flushInterval }) {
  const config = JSON.parse(readFileSync(join(appDir, 'herald.config.json'), 'utf8'));
  config.webhooks = [
    {
      endpoint: `http://127.0.0.1:${appPort}/api/herald/webhook`,
      events: ['disconnect'],
      secret: webhookSecret,
      ...(flushInterval ? { flush_interval: flushInterval } : {}),
    },
  ];
  if (!proxy) return config;
  if (!proxySecret) throw new Error('heraldConfig: proxy mode needs proxySecret');
  const endpoint = (kind) => ({
    endpoint: `http://127.0.0.1:${appPort}/api/herald/proxy/${kind}`,
    // next dev compiles a route on its first call: give it more than the default 1 s.
    timeout: '5s',
    http: { static_headers: { 'X-Herald-Proxy-Secret': proxySecret } },
  });
  config.client = {
    ...config.client,
    proxy: { connect: { enabled: true, ...endpoint('connect'), http_headers: ['Cookie'] } },
  };
  config.channel.proxy = { publish: endpoint('publish') };
  config.channel.namespaces = config.channel.namespaces.map((ns) =>
    ns.name === 'chat' ? { ...ns, publish_proxy_enabled: true } : ns,
  );
  config.rpc = { proxy: endpoint('rpc'), without_namespace: { proxy_enabled: true } };
  return config;
}
