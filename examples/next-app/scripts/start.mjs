// `npm start` (after `npm run build`): next start on :3000 and Herald on :3002, as in production. The /ws rewrite
// was fixed by `next build`: build and start with the same WS_PORT / HERALD_INTERNAL_URL. `-- --cluster` as in dev
// (build with HERALD_INTERNAL_URL_2 set for /ws-2).
// `-- --proxy` (or HERALD_AUTH=proxy): the proxy mode, as in dev (one build serves both modes).
import { proxyMode, runWithHerald } from './common.mjs';

await runWithHerald('start', { cluster: process.argv.includes('--cluster'), proxy: proxyMode() });
