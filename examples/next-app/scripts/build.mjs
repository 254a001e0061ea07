// `npm run build`: the Herald packages, then `next build` with the /ws rewrite pointing at WS_PORT (default 3002).
import { spawnSync } from 'node:child_process';
import { appDir, ensureBuilt, heraldEnv, nextBin } from './common.mjs';

ensureBuilt();
const r = spawnSync(process.execPath, [nextBin, 'build'], {
  cwd: appDir,
  stdio: 'inherit',
  env: {
    ...process.env,
    HERALD_INTERNAL_URL: process.env.HERALD_INTERNAL_URL ?? `http://127.0.0.1:${heraldEnv().WS_PORT}`,
    NEXT_TELEMETRY_DISABLED: '1',
  },
});
process.exit(r.status ?? 1);
