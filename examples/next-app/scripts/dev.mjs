// `npm run dev`: Next.js (next dev) on :3000 and Herald on :3002; the browser reaches Herald through the /ws rewrite.
import { appDir, ensureBuilt, heraldCli, heraldEnv, nextBin, secret } from './common.mjs';
import { runAll } from './processes.mjs';

ensureBuilt();
const port = process.env.PORT ?? '3000';
const herald = heraldEnv();
runAll([
  { name: 'herald', cmd: process.execPath, args: [heraldCli, 'serve'], env: herald, cwd: appDir },
  {
    name: 'next',
    cmd: process.execPath,
    args: [nextBin, 'dev', '-p', port],
    env: {
      NEXTAUTH_SECRET: secret,
      NEXTAUTH_URL: process.env.NEXTAUTH_URL ?? `http://localhost:${port}`,
      HERALD_INTERNAL_URL: process.env.HERALD_INTERNAL_URL ?? `http://127.0.0.1:${herald.WS_PORT}`,
      NEXT_TELEMETRY_DISABLED: '1',
    },
    cwd: appDir,
  },
]);
