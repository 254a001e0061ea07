import { readFileSync } from 'node:fs';
import { closest } from './closest.js';
import { parseDurationMs } from './duration.js';
import { WEBHOOK_EVENT_TYPES } from '../webhooks/events.js';
import type { WebhookTarget } from '../webhooks/sender.js';

/** The keys of one `webhooks` entry (docs/configuration.md, "Webhooks"). */
const WEBHOOK_KEYS = new Set([
  'endpoint',
  'events',
  'secret',
  'timeout',
  'max_batch_size',
  'flush_interval',
  'max_queue_size',
  'max_retry_duration',
  'http',
]);
const EVENT_TYPES: ReadonlySet<string> = new Set(WEBHOOK_EVENT_TYPES);
/** Shortest secret accepted: an HMAC key anyone can guess signs anything. */
export const MIN_WEBHOOK_SECRET_LENGTH = 16;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function loopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

/**
 * `http.tls` of a webhook, named as the proxies' (Centrifugo's `http.tls`): `server_ca_pem`, a PEM file path or PEM
 * text of a private CA trusted besides the system's. There is no way to turn certificate checks off.
 */
function caFrom(http: unknown, where: string, problems: string[]): string | undefined {
  if (http === undefined) return undefined;
  const tls = isRecord(http) ? http.tls : undefined;
  if (!isRecord(http) || !isRecord(tls) || Object.keys(http).some((k) => k !== 'tls')) {
    problems.push(`${where}.http: expected { "tls": { "server_ca_pem": "<CA file>" } }`);
    return undefined;
  }
  for (const key of Object.keys(tls)) {
    if (key === 'server_ca_pem') continue;
    if (key === 'insecure_skip_verify')
      problems.push(
        `${where}.http.tls.insecure_skip_verify: Herald always verifies the endpoint's certificate; trust a private CA with server_ca_pem (a PEM file) instead`,
      );
    else {
      const guess = closest(key, ['server_ca_pem']);
      problems.push(`${where}.http.tls.${key}: unknown option${guess ? `; did you mean "${guess}"?` : ''}`);
    }
  }
  const value = tls.server_ca_pem;
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    problems.push(`${where}.http.tls.server_ca_pem: expected the path of a PEM file (or PEM text)`);
    return undefined;
  }
  let text = value;
  if (!value.includes('-----BEGIN')) {
    try {
      text = readFileSync(value, 'utf8');
    } catch (err) {
      problems.push(
        `${where}.http.tls.server_ca_pem: the CA file ${value} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
      return undefined;
    }
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    problems.push(`${where}.http.tls.server_ca_pem: ${value.slice(0, 200)} holds no PEM certificate`);
    return undefined;
  }
  return text;
}

/**
 * Reads the file's `webhooks: [{ endpoint, events, secret, ... }]`. Every mistake is a problem naming the entry and
 * the key (a misspelt key or event type with the one meant); an http:// endpoint off loopback is a warning (the
 * events travel unencrypted, signed but readable).
 */
export function webhooksFrom(raw: unknown, problems: string[], warnings: string[]): WebhookTarget[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    problems.push('webhooks: expected a list of { endpoint, events, secret }');
    return [];
  }
  const out: WebhookTarget[] = [];
  for (const [i, entry] of raw.entries()) {
    const where = `webhooks[${i}]`;
    if (!isRecord(entry)) {
      problems.push(`${where}: expected an object { endpoint, events, secret }`);
      continue;
    }
    const before = problems.length;
    for (const key of Object.keys(entry)) {
      if (WEBHOOK_KEYS.has(key)) continue;
      const guess = closest(key, WEBHOOK_KEYS);
      problems.push(`${where}.${key}: unknown option${guess ? `; did you mean "${where}.${guess}"?` : ''}`);
    }
    let endpoint = '';
    if (typeof entry.endpoint !== 'string' || entry.endpoint === '') {
      problems.push(`${where}.endpoint: required, the URL Herald POSTs events to (https://…)`);
    } else {
      let url: URL | undefined;
      try {
        url = new URL(entry.endpoint);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        problems.push(`${where}.endpoint: ${JSON.stringify(entry.endpoint)} is not an http:// or https:// URL`);
      } else {
        endpoint = entry.endpoint;
        if (url.protocol === 'http:' && !loopback(url.hostname))
          warnings.push(
            `${where}.endpoint: ${url.origin} is plain http: events are signed but travel unencrypted; use https://`,
          );
      }
    }
    const events: string[] = [];
    if (!Array.isArray(entry.events) || entry.events.length === 0) {
      problems.push(`${where}.events: required, a non-empty list of: ${WEBHOOK_EVENT_TYPES.join(', ')}`);
    } else {
      for (const e of entry.events as unknown[]) {
        if (typeof e === 'string' && EVENT_TYPES.has(e)) {
          if (!events.includes(e)) events.push(e);
          continue;
        }
        const guess = typeof e === 'string' ? closest(e, EVENT_TYPES) : undefined;
        problems.push(
          `${where}.events: ${JSON.stringify(e)} is not an event type${guess ? `; did you mean "${guess}"?` : `; one of ${WEBHOOK_EVENT_TYPES.join(', ')}`}`,
        );
      }
    }
    const secret = entry.secret;
    if (typeof secret !== 'string' || secret.length < MIN_WEBHOOK_SECRET_LENGTH) {
      problems.push(
        `${where}.secret: required, at least ${MIN_WEBHOOK_SECRET_LENGTH} characters (the HMAC-SHA256 key your endpoint verifies x-herald-signature with; e.g. \`openssl rand -hex 32\`)`,
      );
    }
    const duration = (key: string, fallback: number, min: number): number => {
      const v = entry[key];
      if (v === undefined) return fallback;
      const ms = parseDurationMs(v);
      if (ms === undefined || ms < min) {
        problems.push(
          `${where}.${key}: expected a duration like "5s" or "500ms" (at least ${min} ms), got ${JSON.stringify(v)}`,
        );
        return fallback;
      }
      return ms;
    };
    const count = (key: string, fallback: number, min: number, max: number): number => {
      const v = entry[key];
      if (v === undefined) return fallback;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        problems.push(`${where}.${key}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
        return fallback;
      }
      return v;
    };
    const target: WebhookTarget = {
      endpoint,
      events,
      secret: typeof secret === 'string' ? secret : '',
      timeoutMs: duration('timeout', 5_000, 1),
      maxBatchSize: count('max_batch_size', 100, 1, 10_000),
      flushIntervalMs: duration('flush_interval', 100, 0),
      maxQueueSize: count('max_queue_size', 10_000, 1, 10_000_000),
      maxRetryDurationMs: duration('max_retry_duration', 5 * 60_000, 0),
    };
    const ca = caFrom(entry.http, where, problems);
    if (ca !== undefined) target.ca = ca;
    if (problems.length === before) out.push(target);
  }
  return out;
}
