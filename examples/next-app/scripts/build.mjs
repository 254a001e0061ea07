// `npm run build`: the Herald packages, the Prisma clients (offline), then `next build` with the /ws rewrite pointing
// at WS_PORT (default 3002).
import { spawnSync } from 'node:child_process';
import { appDir, ensureBuilt, nextBin } from './common.mjs';
import { generate } from './db.mjs';

ensureBuilt();
generate();
const r = spawnSync(process.execPath, [nextBin, 'build'], {
  cwd: appDir,
  stdio: 'inherit',
  env: {
    ...process.env,
    HERALD_INTERNAL_URL: process.env.HERALD_INTERNAL_URL ?? `http://127.0.0.1:${process.env.WS_PORT ?? '3002'}`,
    NEXT_TELEMETRY_DISABLED: '1',
  },
});
process.exit(r.status ?? 1);
