import { closest } from './closest.js';
import { parseDurationMs } from './duration.js';
import type { NamespaceOptions, SharedPollNamespaceOptions } from './namespace.js';

/**
 * Shared poll subscriptions (Centrifugo v6.8, docs/shared-poll.md): the top-level `shared_poll` section (the HMAC keys
 * that sign which keys a client may track) and a namespace's `shared_poll: {...}` options, checked with Centrifugo's
 * names and defaults.
 */
export interface SharedPollConfig {
  /** `hmac_secret_key`: signs the keys a client may track (the app's backend signs, Herald checks). */
  secret: string;
  /** `hmac_previous_secret_key`: still accepted during a key rotation. @default '' */
  previousSecret: string;
  /** `hmac_previous_secret_key_valid_until`, Unix seconds: signatures issued later must use the new key. @default 0 (no limit) */
  previousValidUntil: number;
  /** `concurrency_limit`: refresh calls to the app's backends at once, all shared poll channels together. @default 64 */
  concurrencyLimit: number;
}

export const SHARED_POLL_DEFAULTS: SharedPollNamespaceOptions = {
  proxy_name: '',
  refresh_interval_ms: 10_000,
  refresh_batch_size: 1000,
  max_keys_per_connection: 5000,
  mode: 'versionless',
  channel_shutdown_delay_ms: 1000,
  track_expired_extra_delay_ms: 25_000,
};

const INT_KEYS = ['refresh_batch_size', 'max_keys_per_connection'] as const;
const DURATION_KEYS = [
  ['refresh_interval', 'refresh_interval_ms'],
  ['channel_shutdown_delay', 'channel_shutdown_delay_ms'],
  ['track_expired_extra_delay', 'track_expired_extra_delay_ms'],
] as const;
const KNOWN_KEYS = new Set<string>([
  'proxy_name',
  'mode',
  'publish_enabled',
  'keep_latest_data',
  ...INT_KEYS,
  ...DURATION_KEYS.map(([k]) => k),
]);

const STREAM_ONLY_KEYS = [
  'presence',
  'join_leave',
  'force_push_join_leave',
  'force_recovery',
  'allow_recovery',
  'force_positioning',
  'allow_positioning',
] as const;

/** The shortest refresh interval taken: a backend polled faster than this is a misconfiguration, not a feature. */
export const MIN_REFRESH_INTERVAL_MS = 50;

/** `subscription_type: "shared_poll"` with its `shared_poll: {...}` options, into `ns`. */
export function sharedPollNamespaceFrom(
  raw: Record<string, unknown>,
  where: string,
  ns: NamespaceOptions,
  problems: string[],
  warnings: string[],
): void {
  ns.subscription_type = 'shared_poll';
  // A shared poll channel carries tracked keys' data only: a stream option on it would be ignored, so it is refused.
  for (const key of STREAM_ONLY_KEYS)
    if (raw[key] === true)
      problems.push(`${where}.${key}: shared poll channels have no ${key.replace(/_/g, ' ')}; remove it`);
  if (typeof raw.history_size === 'number' && raw.history_size > 0)
    problems.push(`${where}.history_size: shared poll channels keep no history; remove it`);
  if (Array.isArray(raw.allowed_delta_types) && raw.allowed_delta_types.length > 0)
    warnings.push(`${where}.allowed_delta_types: Herald sends shared poll data whole (no fossil delta); ignored`);
  const s = raw.shared_poll;
  const opts: SharedPollNamespaceOptions = { ...SHARED_POLL_DEFAULTS };
  ns.shared_poll = opts;
  if (s === undefined || s === null) return;
  if (typeof s !== 'object' || Array.isArray(s)) {
    problems.push(`${where}.shared_poll: expected an object`);
    return;
  }
  const r = s as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (KNOWN_KEYS.has(key)) continue;
    const guess = closest(key, KNOWN_KEYS);
    problems.push(
      guess
        ? `${where}.shared_poll.${key}: unknown option; did you mean "shared_poll.${guess}"?`
        : `${where}.shared_poll.${key}: unknown option`,
    );
  }
  if (r.proxy_name !== undefined) {
    if (typeof r.proxy_name === 'string') opts.proxy_name = r.proxy_name === 'default' ? '' : r.proxy_name;
    else problems.push(`${where}.shared_poll.proxy_name: expected a string, got ${JSON.stringify(r.proxy_name)}`);
  }
  if (r.mode !== undefined) {
    if (r.mode === 'versioned' || r.mode === 'versionless') opts.mode = r.mode;
    else if (r.mode === '') opts.mode = 'versionless';
    else
      problems.push(`${where}.shared_poll.mode: expected "versionless" or "versioned", got ${JSON.stringify(r.mode)}`);
  }
  for (const key of INT_KEYS) {
    const v = r[key];
    if (v === undefined) continue;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 100_000) opts[key] = v;
    else
      problems.push(`${where}.shared_poll.${key}: expected a whole number from 1 to 100000, got ${JSON.stringify(v)}`);
  }
  for (const [src, dst] of DURATION_KEYS) {
    if (r[src] === undefined) continue;
    const ms = parseDurationMs(r[src]);
    if (ms === undefined)
      problems.push(
        `${where}.shared_poll.${src}: expected a duration like "1s", "200ms" or a number of seconds, got ${JSON.stringify(r[src])}`,
      );
    else opts[dst] = ms;
  }
  if (opts.refresh_interval_ms < MIN_REFRESH_INTERVAL_MS)
    problems.push(
      `${where}.shared_poll.refresh_interval: at least ${MIN_REFRESH_INTERVAL_MS}ms (every interval calls the app's backend)`,
    );
  if (r.publish_enabled === true)
    problems.push(
      `${where}.shared_poll.publish_enabled: direct publish (shared_poll_publish) is not supported by Herald; remove it (updates come from polling)`,
    );
  if (r.keep_latest_data !== undefined)
    warnings.push(
      `${where}.shared_poll.keep_latest_data: Herald always keeps each tracked key's latest data (a track gets it at once); ignored`,
    );
}

/** The top-level `shared_poll` section; undefined when absent. */
export function sharedPollConfigFrom(raw: unknown, problems: string[]): SharedPollConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push('shared_poll: expected an object');
    return undefined;
  }
  const r = raw as Record<string, unknown>;
  const known = new Set([
    'hmac_secret_key',
    'hmac_previous_secret_key',
    'hmac_previous_secret_key_valid_until',
    'concurrency_limit',
  ]);
  for (const key of Object.keys(r)) {
    if (known.has(key)) continue;
    const guess = closest(key, known);
    problems.push(
      guess
        ? `shared_poll.${key}: unknown option; did you mean "shared_poll.${guess}"?`
        : `shared_poll.${key}: unknown option`,
    );
  }
  const str = (key: string): string => {
    const v = r[key];
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return v;
    problems.push(`shared_poll.${key}: expected a string`);
    return '';
  };
  const out: SharedPollConfig = {
    secret: str('hmac_secret_key'),
    previousSecret: str('hmac_previous_secret_key'),
    previousValidUntil: 0,
    concurrencyLimit: 64,
  };
  const until = r.hmac_previous_secret_key_valid_until;
  if (until !== undefined) {
    if (typeof until === 'number' && Number.isSafeInteger(until) && until >= 0) out.previousValidUntil = until;
    else problems.push('shared_poll.hmac_previous_secret_key_valid_until: expected Unix seconds (a whole number)');
  }
  const limit = r.concurrency_limit;
  if (limit !== undefined) {
    if (typeof limit === 'number' && Number.isInteger(limit) && limit >= 1 && limit <= 10_000)
      out.concurrencyLimit = limit;
    else problems.push('shared_poll.concurrency_limit: expected a whole number from 1 to 10000');
  }
  return out;
}

/**
 * A shared poll namespace needs the HMAC secret (every track is signed) and a refresh proxy; without either, every
 * track would fail at run time, so the config is refused.
 */
export function checkSharedPollNamespaces(
  namespaces: ReadonlyArray<readonly [where: string, ns: NamespaceOptions]>,
  config: SharedPollConfig | undefined,
  hasProxy: (name: string) => boolean,
  problems: string[],
): void {
  for (const [where, ns] of namespaces) {
    const sp = ns.shared_poll;
    if (ns.subscription_type !== 'shared_poll' || !sp) continue;
    if (!config?.secret)
      problems.push(
        `${where}: subscription_type "shared_poll" needs shared_poll.hmac_secret_key at the top level (the key your backend signs tracked keys with)`,
      );
    if (!hasProxy(sp.proxy_name))
      problems.push(
        sp.proxy_name
          ? `${where}.shared_poll.proxy_name: no proxy named "${sp.proxy_name}" in proxies[]`
          : `${where}: subscription_type "shared_poll" needs a refresh proxy: set shared_poll.proxy_name to a proxies[] entry, or configure channel.proxy.shared_poll_refresh`,
      );
  }
}
