// One port: a custom Next.js server that embeds Herald. Build without the rewrite first (HERALD_REWRITE=0 next build):
// a rewrite of /ws and Herald's own upgrade handler would both answer the same socket.
//   HERALD_REWRITE=0 npx next build && NODE_ENV=production node server.mjs
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import next from 'next';
import { createHerald, createOutboxConsumer } from '@herald/server';
import { databaseUrl, prepareDatabase } from './scripts/db.mjs';

const dir = import.meta.dirname;
if (process.env.HERALD_AUTH === 'proxy') {
  // The proxy mode needs Herald's HTTP API for the rpc proxy and proxies configured to this port: use the scripts.
  console.error(
    'server.mjs: HERALD_AUTH=proxy is not supported here (tokens only); use npm run dev / npm start -- --proxy',
  );
  process.exit(1);
}
// This server answers /ws itself, so the example's /ws rewrite must be off (read by next.config.mjs in dev).
process.env.HERALD_REWRITE ??= '0';
const port = Number(process.env.PORT ?? 3000);
const dev = process.env.NODE_ENV !== 'production';
const secret = process.env.NEXTAUTH_SECRET || 'herald-demo-secret-change-me-0123456789abcdef';

if (!dev) {
  const manifest = JSON.parse(
    readFileSync(join(dir, process.env.NEXT_DIST_DIR || '.next', 'routes-manifest.json'), 'utf8'),
  );
  const rw = manifest.rewrites ?? [];
  const rewrites = Array.isArray(rw)
    ? rw
    : [...(rw.beforeFiles ?? []), ...(rw.afterFiles ?? []), ...(rw.fallback ?? [])];
  if (rewrites.some((r) => r?.source === '/ws')) {
    console.error(
      'server.mjs: this build rewrites /ws to another Herald; rebuild with HERALD_REWRITE=0 so only the embedded Herald answers /ws',
    );
    process.exit(1);
  }
}

const herald = createHerald({
  env: { ...process.env, NEXTAUTH_SECRET: secret },
  configFile: process.env.HERALD_CONFIG ?? join(dir, 'herald.config.json'),
});
// The chat's messages reach Herald through the outbox in the app's database (DATABASE_URL, default prisma/dev.db):
// this process consumes it, as `herald serve` with HERALD_DATABASE_URL does in the two-process setup.
const dbUrl = databaseUrl();
await prepareDatabase(dbUrl);
process.env.DATABASE_URL = dbUrl;
const outbox = createOutboxConsumer({ herald, url: dbUrl });
herald.onClose(() => outbox.stop());
await outbox.start();
const app = next({ dev, dir, hostname: 'localhost', port });
const handle = app.getRequestHandler();
await app.prepare();

const server = createServer((req, res) => {
  // A plain GET of /ws gets Herald's 426 answer, which the client's diagnosis probe relies on.
  if ((req.url ?? '/').split('?')[0] === '/ws') return herald.handleRequest(req, res);
  handle(req, res);
});
// Only upgrades to /ws: every other upgrade (Next.js HMR in dev) is left to Next.js untouched.
herald.attach(server, { path: '/ws' });
server.listen(port, () => console.log(`> app and Herald on http://localhost:${port} (WebSocket /ws)`));

const stop = () => {
  server.close();
  herald.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
