// `npm run dev`: the database (Prisma client generated offline, migrations applied), Herald on :3002 (consuming the
// outbox, webhooks to the app), and `next dev` on :3000; the browser reaches Herald through the /ws rewrite.
// `npm run dev -- --cluster`: a second Herald node on :3003 and both on Redis (127.0.0.1:6379 unless REDIS_URL).
// `npm run dev -- --proxy` (or HERALD_AUTH=proxy): no token route; Herald's connect proxy reads the session cookie,
// the publish proxy validates and stores chat messages, the rpc proxy answers `online` (README, "Proxy mode").
import { proxyMode, runWithHerald } from './common.mjs';

await runWithHerald('dev', { cluster: process.argv.includes('--cluster'), proxy: proxyMode() });
