import { parseArgs } from 'node:util';
import { environmentWith } from './env-file.js';
import { createHerald } from '../herald.js';
import { ConfigError } from '../config/index.js';
import { startServeOutbox } from '../outbox/serve-extension.js';

/** Flags mirror environment variables; env-only start works with no flags at all. */
const FLAG_ENV: Record<string, string> = {
  port: 'WS_PORT',
  host: 'HERALD_HOST',
  'token-secret': 'HERALD_TOKEN_SECRET',
  'token-public-key': 'HERALD_TOKEN_PUBLIC_KEY',
  'token-jwks-url': 'HERALD_TOKEN_JWKS_URL',
  'token-audience': 'HERALD_TOKEN_AUDIENCE',
  'token-issuer': 'HERALD_TOKEN_ISSUER',
  'api-key': 'HERALD_API_KEY',
  'allowed-origins': 'HERALD_ALLOWED_ORIGINS',
  engine: 'HERALD_ENGINE',
  'redis-url': 'REDIS_URL',
  'redis-cluster-nodes': 'HERALD_REDIS_CLUSTER_NODES',
  'redis-prefix': 'HERALD_REDIS_PREFIX',
  'database-url': 'HERALD_DATABASE_URL',
  'log-level': 'HERALD_LOG_LEVEL',
  name: 'HERALD_NAME',
};

export const serveUsage = `herald serve [--config FILE] [--env-file FILE] [--port N] [--host ADDR] [--token-secret S]
             [--api-key K] [--allowed-origins a,b] [--engine memory|redis] [--redis-url URL] [--database-url URL]
             [--redis-cluster-nodes host:port,…] [--insecure] [--log-level LEVEL]
  Every flag mirrors an environment variable (see @herald/server/docs/configuration.md); flags win. --env-file reads
  NAME=value lines (herald init writes one); variables already in the environment win over the file.`;

export async function serve(argv: string[]): Promise<number> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    config: { type: 'string' },
    'env-file': { type: 'string' },
    insecure: { type: 'boolean' },
    help: { type: 'boolean' },
  };
  for (const f of Object.keys(FLAG_ENV)) options[f] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  if (values.help) {
    console.log(serveUsage);
    return 0;
  }
  let env: Record<string, string | undefined>;
  try {
    env = environmentWith(values['env-file'] as string | undefined);
  } catch (err) {
    console.error(`herald: ${(err as Error).message}`);
    return 2;
  }
  for (const [flag, name] of Object.entries(FLAG_ENV)) {
    const v = values[flag];
    if (typeof v === 'string') env[name] = v;
  }
  if (values.insecure) env.HERALD_CLIENT_INSECURE = 'true';
  if (typeof values.config === 'string') env.HERALD_CONFIG = values.config;

  let herald;
  try {
    herald = createHerald({ env });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`herald: ${err.message}`);
      return 2;
    }
    throw err;
  }
  // Features that start with `herald serve` plug in through the Herald's lifecycle hooks (herald.onClose).
  startServeOutbox(herald);
  try {
    await herald.listen();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      herald.log.fatal(
        `port ${herald.config.port} is already in use: stop the other process or set WS_PORT to a free port`,
      );
    } else {
      herald.log.fatal({ err }, 'could not start');
    }
    await herald.close();
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      herald.log.info({ signal }, 'draining: closing clients with 3001');
      const hard = setTimeout(() => {
        herald.log.error('shutdown deadline passed; exiting');
        resolve(0);
      }, herald.config.shutdownTimeoutMs + 2000);
      hard.unref();
      herald.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
