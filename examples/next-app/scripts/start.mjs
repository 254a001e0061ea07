// `npm start` (after `npm run build`): next start on :3000 and Herald on :3002, as in production.
import { appDir, ensureBuilt, heraldCli, heraldEnv, nextBin, secret } from './common.mjs';
import { runAll } from './processes.mjs';

ensureBuilt();
const port = process.env.PORT ?? '3000';
runAll([
  { name: 'herald', cmd: process.execPath, args: [heraldCli, 'serve'], env: heraldEnv(), cwd: appDir },
  {
    name: 'next',
    cmd: process.execPath,
    args: [nextBin, 'start', '-p', port],
    env: { NEXTAUTH_SECRET: secret, NEXTAUTH_URL: process.env.NEXTAUTH_URL ?? `http://localhost:${port}`, NEXT_TELEMETRY_DISABLED: '1' },
    cwd: appDir,
  },
]);
