import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import { isInstalled, isMissing, missingDependency } from './optional-deps.js';

export type { Logger } from 'pino';

type PrettyFactory = (options: Record<string, unknown>) => DestinationStream;

/** pino-pretty, loaded only when pretty logs are used; undefined when it is not installed. */
function loadPretty(): PrettyFactory | undefined {
  if (!isInstalled('pino-pretty')) return undefined;
  try {
    return createRequire(import.meta.url)('pino-pretty') as PrettyFactory;
  } catch (err) {
    if (isMissing(err, 'pino-pretty')) return undefined;
    throw err;
  }
}

/**
 * Structured JSON logs; human-readable (pino-pretty) when stdout is a terminal and pino-pretty is installed, else JSON.
 * `forcePretty: true` asks for pretty logs and throws, naming `npm install pino-pretty`, when it is not installed.
 */
export function createLogger(level: string, forcePretty?: boolean): Logger {
  const usePretty = forcePretty ?? Boolean(process.stdout.isTTY);
  if (usePretty) {
    const pretty = loadPretty();
    if (pretty) {
      return pino(
        { level, base: undefined },
        pretty({ sync: true, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }),
      );
    }
    if (forcePretty) throw new Error(missingDependency('pretty-logs'));
    const log = pino({ level, base: { service: 'herald' } });
    log.info('logs are JSON: `npm install pino-pretty` for human-readable logs in a terminal');
    return log;
  }
  return pino({ level, base: { service: 'herald' } });
}

/** A connection URL fit for logs: its password replaced by `***`; `fallback` when it does not parse. */
export function redactUrl(url: string, fallback: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return fallback;
  }
}
