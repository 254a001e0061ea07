import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** Structured JSON logs; human-readable when stdout is a terminal. */
export function createLogger(level: string, forcePretty?: boolean): Logger {
  const usePretty = forcePretty ?? Boolean(process.stdout.isTTY);
  if (usePretty) {
    return pino(
      { level, base: undefined },
      pretty({ sync: true, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }),
    );
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
