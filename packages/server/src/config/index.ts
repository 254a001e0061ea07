import { parseRedisTarget, redactRedisUrl, redisTargetIdentity, type RedisTarget } from '../engine/redis/url.js';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { closest } from './closest.js';
import { checkOverrides } from './overrides.js';
import { parseDurationMs } from './duration.js';
import { stripJsonComments } from './jsonc.js';
import {
  booleanNamespaceKeys,
  defaultNamespaceOptions,
  MAP_DEFAULT_PAGE_SIZE,
  MAP_MAX_PAGE_SIZE,
  MAP_MIN_PAGE_SIZE,
  type MapNamespaceOptions,
  proxyNameNamespaceKeys,
  type NamespaceOptions,
} from './namespace.js';
import { loadProxyConfig, type ProxyConfig } from './proxy.js';
import { webhooksFrom } from './webhooks.js';
import {
  checkSharedPollNamespaces,
  sharedPollConfigFrom,
  sharedPollNamespaceFrom,
  type SharedPollConfig,
} from './shared-poll.js';
import { adminFileSchema, adminFrom, type AdminConfig } from './admin.js';
import type { WebhookTarget } from '../webhooks/sender.js';

export { parseDurationMs } from './duration.js';
export { defaultNamespaceOptions, type NamespaceOptions } from './namespace.js';
export type { ProxyConfig, ProxyEndpoint, RpcNamespaceProxy, StatusTransform } from './proxy.js';
export type { AdminConfig } from './admin.js';

/**
 * Herald's whole configuration: one typed object with documented defaults (docs/configuration.md).
 * Sources, later wins: defaults < JSON config file (Centrifugo v6 key names) < environment < explicit options.
 */
export interface HeraldConfig {
  /** WS_PORT. @default 3002 */
  port: number;
  /** HERALD_HOST: bind address. @default '0.0.0.0' ('::' would also take IPv6) */
  host: string;
  /** WebSocket endpoints. @default ['/ws', '/connection/websocket'] */
  wsPaths: string[];
  /** HERALD_HTTP_STREAM; file: http_stream.enabled. HTTP-streaming emulation on /connection/http_stream (+ /emulation). @default false */
  httpStream: boolean;
  /** HERALD_SSE; file: sse.enabled. Server-sent events emulation on /connection/sse (+ /emulation). @default false */
  sse: boolean;
  /** HERALD_UNI_SSE; file: uni_sse.enabled. Unidirectional SSE on /connection/uni_sse (docs/unidirectional.md). @default false */
  uniSse: boolean;
  /** HERALD_UNI_SSE_MAX_REQUEST_BODY_SIZE; file: uni_sse.max_request_body_size. Bytes of the connect request (cf_connect or POST body). @default 65536 */
  uniSseMaxRequestBodyBytes: number;
  /** HERALD_UNI_HTTP_STREAM; file: uni_http_stream.enabled. Unidirectional HTTP streaming on /connection/uni_http_stream. @default false */
  uniHttpStream: boolean;
  /** HERALD_UNI_HTTP_STREAM_MAX_REQUEST_BODY_SIZE; file: uni_http_stream.max_request_body_size. Bytes of the POSTed connect request. @default 65536 */
  uniHttpStreamMaxRequestBodyBytes: number;
  /** HERALD_UNI_WEBSOCKET; file: uni_websocket.enabled. Unidirectional WebSocket on /connection/uni_websocket. @default false */
  uniWebsocket: boolean;
  /** HERALD_UNI_WEBSOCKET_MESSAGE_SIZE_LIMIT; file: uni_websocket.message_size_limit. Bytes of the connect message. @default 65536 */
  uniWebsocketMessageSizeLimit: number;
  /** HERALD_UNI_WEBSOCKET_JOIN_PUSH_MESSAGES; file: uni_websocket.join_push_messages. Pushes of one turn in one frame, newline-separated. @default false */
  uniWebsocketJoinPushMessages: boolean;
  /** HERALD_NAME: node name shown by the info API. @default the environment's HOSTNAME, else 'herald' */
  name: string;
  token: {
    /** HERALD_TOKEN_SECRET, else NEXTAUTH_SECRET; file: client.token.hmac_secret_key */
    hmacSecret?: string;
    /** HERALD_TOKEN_PUBLIC_KEY: PEM text or a path to a PEM file; file: client.token.rsa_public_key / ecdsa_public_key */
    publicKey?: string;
    /** HERALD_TOKEN_JWKS_URL; file: client.token.jwks_public_endpoint */
    jwksUrl?: string;
    /** HERALD_TOKEN_AUDIENCE; file: client.token.audience */
    audience?: string;
    /** HERALD_TOKEN_ISSUER; file: client.token.issuer */
    issuer?: string;
    /** HERALD_TOKEN_REQUIRE_EXP. @default true (false in insecure mode, as Centrifugo) */
    requireExp: boolean;
  };
  /** HERALD_CLIENT_INSECURE; file: client.insecure. Development only: no token needed, every permission granted. @default false */
  insecure: boolean;
  /** HERALD_ALLOW_ANONYMOUS; file: client.allow_anonymous_connect_without_token. @default false */
  allowAnonymous: boolean;
  /** HERALD_ALLOWED_ORIGINS (comma-separated, exact scheme://host:port, or '*'); file: client.allowed_origins. */
  allowedOrigins?: string[];
  /** HERALD_COOKIE_REQUIRES_ORIGIN: an upgrade with a Cookie header and no Origin is refused (403). @default true */
  cookieRequiresOrigin: boolean;
  /** HERALD_API_KEY; file: http_api.key. Without it the HTTP API answers 503 unless apiInsecure. */
  apiKey?: string;
  /** HERALD_API_INSECURE; file: http_api.insecure. @default false */
  apiInsecure: boolean;
  /** HERALD_API_MAX_BODY bytes. @default 1 MiB */
  apiMaxBodyBytes: number;
  /** HERALD_API_RATE: requests per second per client IP on /api; 0 = unlimited. @default 0 */
  apiRatePerSecond: number;
  /** HERALD_API_MAX_REPLY_SIZE: bytes of one API answer (a batch's replies together); past it error 106. @default 16 MiB */
  apiMaxReplyBytes: number;
  /** HERALD_API_MAX_BATCH: commands in one API batch; more is 400. @default 1000 */
  apiMaxBatchCommands: number;
  /** HERALD_API_MAX_BROADCAST: channels in one API broadcast; more is 400. @default 1000 */
  apiMaxBroadcastChannels: number;
  /** HERALD_ENGINE. @default 'memory' */
  engine: 'memory' | 'redis';
  /** REDIS_URL. @default 'redis://127.0.0.1:6379' */
  redisUrl: string;
  /** REDIS_URL split into its Redis instances: several, comma-separated, shard channels across them (docs/scaling.md). */
  redisUrls: string[];
  /**
   * HERALD_REDIS_CLUSTER_NODES: a Redis Cluster instead of REDIS_URL, given by some of its nodes (`host:port` or
   * `redis[s]://[user:password@]host:port`, comma-separated; the client discovers the rest). Channels are spread over
   * the cluster's hash slots (docs/scaling.md#redis-cluster).
   */
  redisClusterNodes?: string[];
  /** HERALD_REDIS_PREFIX. @default 'herald' */
  redisPrefix: string;
  /** HERALD_REDIS_TIMEOUT: a Redis command unanswered this long fails with code 100 (HTTP 503). @default 2s */
  redisTimeoutMs: number;
  /**
   * HERALD_REDIS_MIN_REPLICAS: a publish is acknowledged only after this many replicas confirmed it (Redis WAIT),
   * so a failover cannot lose it. @default 0
   */
  redisMinReplicas: number;
  /** HERALD_DATABASE_URL: turns the outbox consumer on. */
  databaseUrl?: string;
  /** HERALD_OUTBOX_MAX_PAYLOAD: bytes of one outbox row's payload; a larger row is moved to herald_outbox_dead unread (106). @default 1 MiB */
  outboxMaxPayloadBytes: number;
  /** HERALD_OUTBOX_MAX_BATCH_BYTES: payload bytes one outbox batch reads (at least one row). @default 16 MiB */
  outboxMaxBatchBytes: number;
  /** HERALD_OUTBOX_STUCK_AFTER: an outbox partition waiting this long on one row logs `outbox_partition_stuck`. @default 60 s */
  outboxStuckAfterMs: number;
  /** HERALD_OUTBOX_BATCH_SIZE: rows the outbox consumer claims per transaction (at least 1). @default 100 (set by the consumer) */
  outboxBatchSize?: number;
  /** HERALD_OUTBOX_POLL_MS: how often the outbox consumer looks for rows without a NOTIFY (at least 1). @default 1000 Postgres, 100 SQLite */
  outboxPollIntervalMs?: number;
  /** HERALD_OUTBOX_WORKERS: outbox batches in flight on one node (at least 1). @default 4 Postgres, 1 SQLite */
  outboxWorkers?: number;
  /** HERALD_PING_INTERVAL (client.ping_interval). @default 25 s */
  pingIntervalMs: number;
  /** HERALD_PONG_TIMEOUT (client.pong_timeout). @default 8 s */
  pongTimeoutMs: number;
  /** HERALD_MAX_MESSAGE_SIZE bytes of one incoming WebSocket message; larger closes with 1009. @default 65536 */
  maxMessageBytes: number;
  /** HERALD_CONNECT_TIMEOUT: a socket that sends no valid connect in time is closed with 3502. @default 10 s */
  connectTimeoutMs: number;
  /** HERALD_HANDSHAKE_TIMEOUT: a socket that has not sent complete HTTP request headers in time is closed (408). @default 10 s */
  handshakeTimeoutMs: number;
  /** HERALD_CHANNEL_LIMIT (client.channel_limit): subscriptions per connection (error 106). @default 128 */
  channelLimit: number;
  /** HERALD_USER_CONNECTION_LIMIT (client.user_connection_limit): per user per node, 0 = none (3504). @default 0 */
  userConnectionLimit: number;
  /** HERALD_IP_CONNECTION_LIMIT: per client IP per node, 0 = none (403 before upgrade). @default 0 */
  ipConnectionLimit: number;
  /** HERALD_COMMAND_RATE: commands per second per connection (burst = 2x); past it error 111, then 3013. 0 = none. @default 100 */
  commandRatePerSecond: number;
  /** HERALD_MAX_ERRORS: bad commands tolerated per connection before 3509. @default 20 */
  maxErrors: number;
  /** HERALD_MAX_SEND_BUFFER bytes queued to one socket before it is closed with 3008 (slow). @default 1 MiB */
  maxSendBufferBytes: number;
  /**
   * HERALD_MAX_REPLY_SIZE: bytes of one reply to a client (history, presence, a recovering subscribe or connect), never
   * more than HERALD_MAX_SEND_BUFFER; past it error 106 (history, presence) or `recovered: false`. @default 512 KiB
   */
  maxReplyBytes: number;
  /** HERALD_MAX_JSON_DEPTH: nesting of JSON data from clients, the API and the outbox; deeper is 107 / 400. @default 64 */
  maxJsonDepth: number;
  /** HERALD_MAX_INFO_SIZE: bytes of a token's `info` / `b64info` (connection, subscription, `subs` entries); past it the token is refused. @default 4096 */
  maxInfoBytes: number;
  /** HERALD_EXPIRED_CLOSE_DELAY: grace after a token's exp before closing with 3005 (the SDK refreshes at exp). @default 25 s */
  expiredCloseDelayMs: number;
  /** HERALD_PRESENCE_TTL (presence entries' lifetime in a shared engine). @default 60 s */
  presenceTtlMs: number;
  /** HERALD_SHUTDOWN_TIMEOUT: SIGTERM drain deadline. @default 10 s */
  shutdownTimeoutMs: number;
  /** HERALD_LOG_LEVEL. @default 'info' */
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  channel: {
    withoutNamespace: NamespaceOptions;
    namespaces: Map<string, NamespaceOptions>;
  };
  /** file: webhooks. Lifecycle events POSTed to the app (docs/proxy.md, "Webhooks"). @default [] */
  webhooks: WebhookTarget[];
  /** Proxies to the app's backend (file: client.proxy, channel.proxy, proxies, rpc; docs/proxy.md). */
  proxy: ProxyConfig;
  /** file: shared_poll. The HMAC keys of shared poll subscriptions (docs/shared-poll.md); undefined when absent. */
  sharedPoll?: SharedPollConfig | undefined;
  /** file: admin; HERALD_ADMIN_*. The admin web UI (docs/admin.md). */
  admin: AdminConfig;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super('invalid configuration:\n  - ' + problems.join('\n  - '));
    this.name = 'ConfigError';
  }
}

export type HeraldEnv = Record<string, string | undefined>;

/** The process environment: the default `env` of createHerald. The one place outside the CLI that reads it. */
export function processEnv(): HeraldEnv {
  return process.env;
}

export interface LoadConfigInput {
  env?: HeraldEnv;
  /** Path of a JSON config file, `//` and `/* *\/` comments allowed (HERALD_CONFIG or --config). */
  configFile?: string;
  /** Parsed JSON config (instead of a file). */
  fileConfig?: unknown;
  /** Explicit values (createHerald options, CLI flags): win over everything. */
  overrides?: Partial<Omit<HeraldConfig, 'channel' | 'token' | 'webhooks' | 'admin'>> & {
    token?: Partial<HeraldConfig['token']>;
    admin?: Partial<AdminConfig>;
    channel?: { withoutNamespace?: Partial<NamespaceOptions>; namespaces?: Record<string, Partial<NamespaceOptions>> };
  };
}

const nsSchemaShape: Record<string, z.ZodType> = {};
for (const key of booleanNamespaceKeys) nsSchemaShape[key] = z.boolean().optional();
Object.assign(nsSchemaShape, {
  history_size: z.number().int().min(0).max(1_000_000).optional(),
  history_ttl: z.union([z.string(), z.number()]).optional(),
  history_meta_ttl: z.union([z.string(), z.number()]).optional(),
  allowed_delta_types: z.array(z.literal('fossil')).optional(),
  force_recovery_mode: z.enum(['stream', 'cache']).optional(),
  // Checked key by key in mapOptionsFrom, so that a misspelt map option names the one meant.
  subscription_type: z.unknown().optional(),
  map: z.unknown().optional(),
  shared_poll: z.unknown().optional(),
  map_clients_presence_channel_prefix: z.string().optional(),
  client_publish_debounce_interval: z.union([z.string(), z.number()]).optional(),
});
for (const key of proxyNameNamespaceKeys) nsSchemaShape[key] = z.string().optional();
const namespaceSchema = z.looseObject(nsSchemaShape);
const namedNamespaceSchema = namespaceSchema.extend({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "-" or "." (1-64 characters)'),
});

const fileSchema = z.looseObject({
  client: z
    .looseObject({
      token: z
        .looseObject({
          hmac_secret_key: z.string().min(1).optional(),
          rsa_public_key: z.string().optional(),
          ecdsa_public_key: z.string().optional(),
          jwks_public_endpoint: z.string().url().optional(),
          audience: z.string().optional(),
          issuer: z.string().optional(),
        })
        .optional(),
      allowed_origins: z.array(z.string()).optional(),
      insecure: z.boolean().optional(),
      allow_anonymous_connect_without_token: z.boolean().optional(),
      channel_limit: z.number().int().min(1).optional(),
      user_connection_limit: z.number().int().min(0).optional(),
      ping_interval: z.union([z.string(), z.number()]).optional(),
      pong_timeout: z.union([z.string(), z.number()]).optional(),
      proxy: z.unknown().optional(),
    })
    .optional(),
  http_api: z.looseObject({ key: z.string().optional(), insecure: z.boolean().optional() }).optional(),
  http_stream: z.looseObject({ enabled: z.boolean().optional() }).optional(),
  sse: z.looseObject({ enabled: z.boolean().optional() }).optional(),
  uni_sse: z
    .looseObject({ enabled: z.boolean().optional(), max_request_body_size: z.number().int().min(128).optional() })
    .optional(),
  uni_http_stream: z
    .looseObject({ enabled: z.boolean().optional(), max_request_body_size: z.number().int().min(128).optional() })
    .optional(),
  uni_websocket: z
    .looseObject({
      enabled: z.boolean().optional(),
      message_size_limit: z.number().int().min(128).optional(),
      join_push_messages: z.boolean().optional(),
    })
    .optional(),
  channel: z
    .looseObject({
      without_namespace: namespaceSchema.optional(),
      namespaces: z.array(namedNamespaceSchema).optional(),
      proxy: z.unknown().optional(),
    })
    .optional(),
  // Checked entry by entry in webhooks.ts, so that a misspelt key or event type names the one meant.
  webhooks: z.unknown().optional(),
  proxies: z.unknown().optional(),
  rpc: z.unknown().optional(),
  // Centrifugo's choice of map storage; Herald keeps maps in its engine (memory or Redis), so its content is ignored.
  map_broker: z.unknown().optional(),
  // Checked key by key in shared-poll.ts.
  shared_poll: z.unknown().optional(),
  admin: adminFileSchema,
});

const knownNamespaceKeys = new Set([...Object.keys(nsSchemaShape), 'name']);

/** The keys each non-namespace section of the file knows, taken from the schema so the two cannot drift apart. */
const clientShape = fileSchema.shape.client.unwrap().shape;
const knownSectionKeys: ReadonlyArray<readonly [path: string[], keys: ReadonlySet<string>]> = [
  [[], new Set(Object.keys(fileSchema.shape))],
  [['client'], new Set(Object.keys(clientShape))],
  [['client', 'token'], new Set(Object.keys(clientShape.token.unwrap().shape))],
  [['http_api'], new Set(Object.keys(fileSchema.shape.http_api.unwrap().shape))],
  [['http_stream'], new Set(Object.keys(fileSchema.shape.http_stream.unwrap().shape))],
  [['sse'], new Set(Object.keys(fileSchema.shape.sse.unwrap().shape))],
  [['uni_sse'], new Set(Object.keys(fileSchema.shape.uni_sse.unwrap().shape))],
  [['uni_http_stream'], new Set(Object.keys(fileSchema.shape.uni_http_stream.unwrap().shape))],
  [['uni_websocket'], new Set(Object.keys(fileSchema.shape.uni_websocket.unwrap().shape))],
  [['channel'], new Set(Object.keys(fileSchema.shape.channel.unwrap().shape))],
  [['admin'], new Set(Object.keys(fileSchema.shape.admin.unwrap().shape))],
];

/**
 * Unknown keys outside the namespaces: one close to a known key of its section is a misspelling (a problem, with
 * the key meant); any other is a Centrifugo option Herald does not have (a warning). A typo never passes silently.
 */
function checkSectionKeys(file: unknown, problems: string[], warnings: string[]): void {
  for (const [path, known] of knownSectionKeys) {
    let section: unknown = file;
    for (const p of path)
      section = section && typeof section === 'object' ? (section as Record<string, unknown>)[p] : undefined;
    if (!section || typeof section !== 'object' || Array.isArray(section)) continue;
    for (const key of Object.keys(section)) {
      if (known.has(key)) continue;
      const where = [...path, key].join('.');
      const guess = closest(key, known);
      if (guess) problems.push(`${where}: unknown option; did you mean "${[...path, guess].join('.')}"?`);
      else warnings.push(`${where}: not supported by Herald, ignored`);
    }
  }
}

/**
 * Centrifugo v6 channel options Herald does not implement. A config written for Centrifugo may carry them, so they
 * are warned about and never mistaken for a misspelling of a supported key (e.g. `map` is not a typo of `name`).
 */
const centrifugoOnlyNamespaceKeys = new Set([
  'channel_regex',
  'batch_max_size',
  'batch_max_delay',
  'batch_flush_latest',
  'subscribe_stream_proxy_enabled',
  'subscribe_stream_proxy_name',
  'subscribe_stream_proxy_bidirectional',
  'map_users_presence_channel_prefix',
  'allow_channel_compaction',
]);

function namespaceFrom(
  raw: Record<string, unknown>,
  where: string,
  base: NamespaceOptions,
  problems: string[],
  warnings: string[],
): NamespaceOptions {
  const ns: NamespaceOptions = { ...base };
  for (const key of Object.keys(raw)) {
    if (knownNamespaceKeys.has(key)) continue;
    const guess = centrifugoOnlyNamespaceKeys.has(key) ? undefined : closest(key, knownNamespaceKeys);
    if (guess) problems.push(`${where}.${key}: unknown option; did you mean "${guess}"?`);
    else warnings.push(`${where}.${key}: not supported by Herald, ignored`);
  }
  for (const key of booleanNamespaceKeys) {
    const v = raw[key];
    if (typeof v === 'boolean') (ns as unknown as Record<string, unknown>)[key] = v;
  }
  if (typeof raw.history_size === 'number') ns.history_size = raw.history_size;
  if (Array.isArray(raw.allowed_delta_types)) ns.allowed_delta_types = [...(raw.allowed_delta_types as string[])];
  if (raw.force_recovery_mode === 'cache' || raw.force_recovery_mode === 'stream')
    ns.force_recovery_mode = raw.force_recovery_mode;
  for (const key of proxyNameNamespaceKeys) if (typeof raw[key] === 'string') ns[key] = raw[key];
  mapNamespaceFrom(raw, where, ns, problems, warnings);
  for (const [src, dst] of [
    ['history_ttl', 'history_ttl_ms'],
    ['history_meta_ttl', 'history_meta_ttl_ms'],
  ] as const) {
    if (raw[src] === undefined) continue;
    const ms = parseDurationMs(raw[src]);
    if (ms === undefined)
      problems.push(
        `${where}.${src}: expected a duration like "300s", "5m" or a number of seconds, got ${JSON.stringify(raw[src])}`,
      );
    else ns[dst] = ms;
  }
  if (ns.history_size > 0 && ns.history_ttl_ms === 0) {
    problems.push(
      `${where}: history_size is ${ns.history_size} but history_ttl is not set; set history_ttl (e.g. "300s") so history can expire`,
    );
  }
  if ((ns.force_recovery || ns.allow_recovery) && ns.history_size === 0) {
    problems.push(
      `${where}: recovery needs history; set history_size and history_ttl, or remove force_recovery/allow_recovery`,
    );
  }
  if (ns.force_recovery_mode === 'cache' && !ns.force_recovery && !ns.allow_recovery) {
    problems.push(
      `${where}: force_recovery_mode "cache" answers recovering subscribes; set force_recovery (or allow_recovery) with history_size (1 is enough) and history_ttl`,
    );
  }
  if (ns.auto_cache_recover && ns.force_recovery_mode !== 'cache') {
    problems.push(
      `${where}: auto_cache_recover needs force_recovery_mode "cache" (and force_recovery); set both or remove auto_cache_recover`,
    );
  }
  return ns;
}

const MAP_BOOLEAN_KEYS = [
  'remove_client_on_unsubscribe',
  'allow_publish_for_client',
  'allow_publish_for_subscriber',
  'allow_publish_for_anonymous',
  'allow_remove_for_client',
  'allow_remove_for_subscriber',
  'allow_remove_for_anonymous',
] as const;
const MAP_INT_KEYS = [
  'stream_size',
  'default_page_size',
  'min_page_size',
  'max_page_size',
  'live_transition_max_publication_limit',
] as const;
const MAP_DURATION_KEYS = [
  ['key_ttl', 'key_ttl_ms'],
  ['stream_ttl', 'stream_ttl_ms'],
  ['meta_ttl', 'meta_ttl_ms'],
] as const;
/**
 * Centrifugo v6.8 map options Herald does not implement: the map proxies (a config relying on them for who may
 * write must not load as if writes were open) are refused; `subscribe_catch_up_timeout` is warned about (Herald's
 * subscribe steps hold nothing that could time out but the first step's permission).
 */
const CENTRIFUGO_ONLY_MAP_KEYS = new Set([
  'publish_proxy_enabled',
  'publish_proxy_name',
  'remove_proxy_enabled',
  'remove_proxy_name',
  'subscribe_catch_up_timeout',
]);
const KNOWN_MAP_KEYS = new Set<string>([
  'mode',
  'client_key',
  ...MAP_BOOLEAN_KEYS,
  ...MAP_INT_KEYS,
  ...MAP_DURATION_KEYS.map(([k]) => k),
]);

/**
 * `subscription_type`, `map: {...}`, `map_clients_presence_channel_prefix`, `client_publish_debounce_interval`:
 * checked as Centrifugo v6.8 checks them (centrifuge's ResolveAndValidateMapChannelOptions), with the defaults it
 * derives. Map presence by user (`map_users`) is not implemented: a problem, not a silent stream.
 */
function mapNamespaceFrom(
  raw: Record<string, unknown>,
  where: string,
  ns: NamespaceOptions,
  problems: string[],
  warnings: string[],
): void {
  const type = raw.subscription_type;
  if (type === 'map_users') {
    // A Centrifugo config for the SDK's suite has it: it loads, and subscribing with that type gets 108.
    warnings.push(`${where}.subscription_type: "${type}" is not supported by Herald; its subscribes get 108`);
    return;
  }
  if (type === 'shared_poll') {
    if (raw.map !== undefined) problems.push(`${where}.map: map options need subscription_type "map" or "map_clients"`);
    sharedPollNamespaceFrom(raw, where, ns, problems, warnings);
    return;
  }
  if (raw.shared_poll !== undefined)
    problems.push(`${where}.shared_poll: shared poll options need subscription_type "shared_poll"`);
  if (type !== undefined && type !== 'stream' && type !== 'map' && type !== 'map_clients') {
    problems.push(
      `${where}.subscription_type: expected "stream", "map", "map_clients" or "shared_poll" (or Centrifugo's "map_users", not supported), got ${JSON.stringify(type)}`,
    );
  } else if (type !== undefined) ns.subscription_type = type;
  if (typeof raw.map_clients_presence_channel_prefix === 'string')
    ns.map_clients_presence_channel_prefix = raw.map_clients_presence_channel_prefix;
  if (raw.client_publish_debounce_interval !== undefined) {
    const ms = parseDurationMs(raw.client_publish_debounce_interval);
    if (ms === undefined)
      problems.push(
        `${where}.client_publish_debounce_interval: expected a duration like "50ms" or a number of seconds, got ${JSON.stringify(raw.client_publish_debounce_interval)}`,
      );
    else ns.client_publish_debounce_interval_ms = ms;
  }
  const isMap = ns.subscription_type !== 'stream';
  const m = raw.map;
  if (m === undefined || m === null) {
    if (isMap)
      problems.push(
        `${where}: subscription_type "${ns.subscription_type}" needs map options; add "map": {"mode": "ephemeral", "key_ttl": "60s"} (or mode "recoverable" / "persistent")`,
      );
    return;
  }
  if (typeof m !== 'object' || Array.isArray(m)) {
    problems.push(`${where}.map: expected an object`);
    return;
  }
  if (!isMap) {
    problems.push(`${where}.map: map options need subscription_type "map" or "map_clients"`);
    return;
  }
  const r = m as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (KNOWN_MAP_KEYS.has(key)) continue;
    if (key === 'subscribe_catch_up_timeout') {
      warnings.push(`${where}.map.${key}: not needed by Herald, ignored`);
      continue;
    }
    const guess = CENTRIFUGO_ONLY_MAP_KEYS.has(key) ? undefined : closest(key, KNOWN_MAP_KEYS);
    problems.push(
      guess
        ? `${where}.map.${key}: unknown option; did you mean "map.${guess}"?`
        : CENTRIFUGO_ONLY_MAP_KEYS.has(key)
          ? `${where}.map.${key}: not supported by Herald; remove it`
          : `${where}.map.${key}: unknown option`,
    );
  }
  const mode = r.mode;
  if (mode !== 'ephemeral' && mode !== 'recoverable' && mode !== 'persistent') {
    problems.push(
      `${where}.map.mode: expected "ephemeral", "recoverable" or "persistent", got ${mode === undefined ? 'nothing' : JSON.stringify(mode)}`,
    );
    return;
  }
  const opts: MapNamespaceOptions = {
    mode,
    key_ttl_ms: 0,
    stream_size: 0,
    stream_ttl_ms: 0,
    meta_ttl_ms: 0,
    client_key: '',
    remove_client_on_unsubscribe: false,
    allow_publish_for_client: false,
    allow_publish_for_subscriber: false,
    allow_publish_for_anonymous: false,
    allow_remove_for_client: false,
    allow_remove_for_subscriber: false,
    allow_remove_for_anonymous: false,
    default_page_size: MAP_DEFAULT_PAGE_SIZE,
    min_page_size: MAP_MIN_PAGE_SIZE,
    max_page_size: MAP_MAX_PAGE_SIZE,
    live_transition_max_publication_limit: 0,
  };
  for (const key of MAP_BOOLEAN_KEYS) {
    if (r[key] === undefined) continue;
    if (typeof r[key] === 'boolean') opts[key] = r[key];
    else problems.push(`${where}.map.${key}: expected true or false, got ${JSON.stringify(r[key])}`);
  }
  for (const key of MAP_INT_KEYS) {
    const v = r[key];
    if (v === undefined) continue;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1_000_000) opts[key] = v;
    else problems.push(`${where}.map.${key}: expected a whole number from 0 to 1000000, got ${JSON.stringify(v)}`);
  }
  const given = new Set<string>();
  for (const [src, dst] of MAP_DURATION_KEYS) {
    if (r[src] === undefined) continue;
    const ms = parseDurationMs(r[src]);
    if (ms === undefined)
      problems.push(
        `${where}.map.${src}: expected a duration like "60s", "5m" or a number of seconds, got ${JSON.stringify(r[src])}`,
      );
    else {
      opts[dst] = ms;
      given.add(src);
    }
  }
  if (r.client_key !== undefined) {
    if (r.client_key === '' || r.client_key === 'client_id' || r.client_key === 'user_id')
      opts.client_key = r.client_key;
    else
      problems.push(`${where}.map.client_key: expected "client_id" or "user_id", got ${JSON.stringify(r.client_key)}`);
  }
  const expires = mode !== 'persistent';
  if (expires && opts.key_ttl_ms <= 0)
    problems.push(`${where}.map.key_ttl: mode "${mode}" needs key_ttl (e.g. "60s"): its keys expire`);
  if (!expires && opts.key_ttl_ms > 0)
    problems.push(
      `${where}.map.key_ttl: mode "persistent" keys never expire; remove key_ttl or use mode "recoverable"`,
    );
  if (mode === 'ephemeral') {
    for (const k of ['stream_size', 'stream_ttl', 'meta_ttl'])
      if (k === 'stream_size' ? opts.stream_size > 0 : given.has(k))
        problems.push(`${where}.map.${k}: mode "ephemeral" keeps no stream; remove ${k} or use mode "recoverable"`);
  } else {
    if (opts.stream_size === 0) opts.stream_size = 100;
    if (opts.stream_ttl_ms === 0) opts.stream_ttl_ms = 60_000;
    if (!given.has('meta_ttl')) {
      opts.meta_ttl_ms =
        mode === 'recoverable'
          ? Math.max(opts.stream_ttl_ms * 10, opts.key_ttl_ms)
          : defaultNamespaceOptions.history_meta_ttl_ms;
    } else if (opts.meta_ttl_ms < opts.stream_ttl_ms || opts.meta_ttl_ms < opts.key_ttl_ms) {
      problems.push(
        `${where}.map.meta_ttl: must be at least stream_ttl and key_ttl (the stream's position must outlive them)`,
      );
    }
  }
  if (opts.min_page_size > opts.max_page_size)
    problems.push(`${where}.map.min_page_size: larger than max_page_size (${opts.max_page_size})`);
  if (opts.live_transition_max_publication_limit === 0) opts.live_transition_max_publication_limit = opts.max_page_size;
  if (opts.remove_client_on_unsubscribe && opts.client_key === '')
    problems.push(
      `${where}.map.remove_client_on_unsubscribe: needs map.client_key ("client_id" or "user_id"): it removes the key the client owns`,
    );
  if (
    ns.subscription_type === 'map_clients' &&
    (opts.allow_publish_for_client ||
      opts.allow_publish_for_subscriber ||
      opts.allow_publish_for_anonymous ||
      opts.allow_remove_for_client ||
      opts.allow_remove_for_subscriber ||
      opts.allow_remove_for_anonymous)
  )
    problems.push(
      `${where}.map: a "map_clients" channel is written by Herald only (its subscribers' presence); remove the allow_publish_* / allow_remove_* options`,
    );
  ns.map = opts;
}

function envInt(env: HeraldEnv, name: string, problems: string[], min = 0): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    problems.push(`${name}=${JSON.stringify(raw)}: expected a whole number >= ${min}`);
    return undefined;
  }
  return n;
}

function envBool(env: HeraldEnv, name: string, problems: string[]): boolean | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  problems.push(`${name}=${JSON.stringify(raw)}: expected true or false`);
  return undefined;
}

function envDuration(env: HeraldEnv, name: string, problems: string[]): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const ms = parseDurationMs(raw);
  if (ms === undefined)
    problems.push(`${name}=${JSON.stringify(raw)}: expected a duration like "10s" or "500ms", or seconds`);
  return ms;
}

function envStr(env: HeraldEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function validOrigin(o: string): boolean {
  if (o === '*') return true;
  try {
    const u = new URL(o);
    return u.origin === o && (u.protocol === 'http:' || u.protocol === 'https:');
  } catch {
    return false;
  }
}

/** Builds the configuration; throws ConfigError listing every problem with the key and what is expected. */
export function loadConfig(input: LoadConfigInput = {}): HeraldConfig & { warnings: string[] } {
  const env = input.env ?? {};
  const problems: string[] = [];
  const warnings: string[] = [];

  let rawFile: unknown = input.fileConfig;
  const configFile = input.configFile ?? envStr(env, 'HERALD_CONFIG');
  if (rawFile === undefined && configFile) {
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch (err) {
      throw new ConfigError([
        `config file ${configFile}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); check HERALD_CONFIG / --config`,
      ]);
    }
    try {
      rawFile = JSON.parse(stripJsonComments(text));
    } catch (err) {
      throw new ConfigError([`config file ${configFile}: not valid JSON (${(err as Error).message})`]);
    }
  }
  const parsed = fileSchema.safeParse(rawFile ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path
        .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
        .join('.')
        .replace(/\.\[/g, '[');
      problems.push(`${configFile ?? 'config'}: ${path || '(root)'}: ${issue.message}`);
    }
    throw new ConfigError(problems);
  }
  const file = parsed.data;
  checkSectionKeys(rawFile ?? {}, problems, warnings);
  const fileToken = file.client?.token;

  const withoutNamespace = namespaceFrom(
    (file.channel?.without_namespace ?? {}) as Record<string, unknown>,
    'channel.without_namespace',
    defaultNamespaceOptions,
    problems,
    warnings,
  );
  const namespaces = new Map<string, NamespaceOptions>();
  for (const [i, raw] of (file.channel?.namespaces ?? []).entries()) {
    const name = raw.name as string;
    if (namespaces.has(name)) problems.push(`channel.namespaces[${i}].name: namespace "${name}" is defined twice`);
    namespaces.set(
      name,
      namespaceFrom(
        raw as Record<string, unknown>,
        `channel.namespaces[${i}] ("${name}")`,
        defaultNamespaceOptions,
        problems,
        warnings,
      ),
    );
  }

  for (const [where, ns] of [
    ['channel.without_namespace', withoutNamespace] as const,
    ...[...namespaces].map(([name, ns]) => [`channel.namespaces ("${name}")`, ns] as const),
  ]) {
    const prefix = ns.map_clients_presence_channel_prefix;
    if (!prefix) continue;
    const sep = prefix.indexOf(':');
    const target = sep > 0 ? namespaces.get(prefix.slice(0, sep)) : withoutNamespace;
    if (target?.subscription_type !== 'map_clients')
      problems.push(
        `${where}.map_clients_presence_channel_prefix: channels "${prefix}<channel>" must be in a namespace with subscription_type "map_clients"${sep > 0 ? ` (namespace "${prefix.slice(0, sep)}")` : ''}`,
      );
  }

  const insecure = envBool(env, 'HERALD_CLIENT_INSECURE', problems) ?? file.client?.insecure ?? false;
  const originsEnv = envStr(env, 'HERALD_ALLOWED_ORIGINS');
  let allowedOrigins =
    originsEnv !== undefined
      ? originsEnv
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : file.client?.allowed_origins;
  if (allowedOrigins) {
    allowedOrigins = allowedOrigins.map((o) => o.replace(/\/$/, ''));
    for (const o of allowedOrigins) {
      if (!validOrigin(o))
        problems.push(
          `HERALD_ALLOWED_ORIGINS / client.allowed_origins: "${o}" is not an origin; write scheme://host[:port] exactly as the browser sends it, e.g. http://localhost:3000`,
        );
    }
  }
  const requireExpEnv = envBool(env, 'HERALD_TOKEN_REQUIRE_EXP', problems);
  const engineRaw = envStr(env, 'HERALD_ENGINE') ?? 'memory';
  if (engineRaw !== 'memory' && engineRaw !== 'redis')
    problems.push(`HERALD_ENGINE=${JSON.stringify(engineRaw)}: expected "memory" or "redis"`);
  const redisPrefixRaw = envStr(env, 'HERALD_REDIS_PREFIX');
  if (redisPrefixRaw !== undefined && /[{}\s]/.test(redisPrefixRaw))
    problems.push(
      `HERALD_REDIS_PREFIX=${JSON.stringify(redisPrefixRaw)}: must not contain { } or spaces ({ } are Redis Cluster hash tags)`,
    );
  const redisUrl = envStr(env, 'REDIS_URL') ?? 'redis://127.0.0.1:6379';
  const redisUrls = splitRedisUrls(redisUrl);
  if (engineRaw === 'redis' && envStr(env, 'HERALD_REDIS_CLUSTER_NODES') === undefined) {
    const seen = new Set<string>();
    for (const [i, u] of redisUrls.entries()) {
      const which = redisUrls.length > 1 ? `REDIS_URL entry ${i + 1}` : 'REDIS_URL';
      let target: RedisTarget;
      try {
        target = parseRedisTarget(u);
      } catch (err) {
        problems.push(
          `${which} (${redactRedisUrl(u, 'unreadable')}): ${(err as Error).message}; write redis://[user:password@]host:port[/db] (rediss:// for TLS, redis+sentinel://host:port[,host:port…]/<master name> for Sentinel), several separated by commas to shard channels across them`,
        );
        continue;
      }
      const id = redisTargetIdentity(target);
      if (seen.has(id)) problems.push(`REDIS_URL lists ${id} twice; each shard must be a different Redis`);
      seen.add(id);
    }
  }
  const clusterRaw = envStr(env, 'HERALD_REDIS_CLUSTER_NODES');
  const redisClusterNodes = clusterRaw === undefined ? undefined : splitClusterNodes(clusterRaw);
  if (redisClusterNodes !== undefined) {
    if (engineRaw !== 'redis')
      problems.push(
        'HERALD_REDIS_CLUSTER_NODES is set but HERALD_ENGINE is not "redis": set HERALD_ENGINE=redis to use the cluster, or unset HERALD_REDIS_CLUSTER_NODES',
      );
    if (envStr(env, 'REDIS_URL') !== undefined)
      problems.push(
        `HERALD_REDIS_CLUSTER_NODES and REDIS_URL are both set: a Redis Cluster is given by its nodes alone (${
          /redis\+sentinel:/i.test(redisUrl)
            ? 'a Cluster has no Sentinel: its replicas fail over by themselves'
            : 'REDIS_URL shards would split channels a second time'
        }); unset REDIS_URL`,
      );
    if (redisClusterNodes.length === 0)
      problems.push('HERALD_REDIS_CLUSTER_NODES: no node; write host:port[,host:port…] (some nodes of the cluster)');
    for (const node of redisClusterNodes) {
      const problem = clusterNodeProblem(node);
      if (problem)
        problems.push(
          `HERALD_REDIS_CLUSTER_NODES entry ${JSON.stringify(node.includes('://') ? redactRedisUrl(node, 'unreadable') : node)}: ${problem}; write host:port or redis[s]://[user:password@]host:port, comma-separated`,
        );
    }
  }
  const logLevel = envStr(env, 'HERALD_LOG_LEVEL') ?? 'info';
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
  if (!levels.includes(logLevel))
    problems.push(`HERALD_LOG_LEVEL=${JSON.stringify(logLevel)}: expected one of ${levels.join(', ')}`);

  let pingIntervalMs = envDuration(env, 'HERALD_PING_INTERVAL', problems);
  if (pingIntervalMs === undefined && file.client?.ping_interval !== undefined) {
    pingIntervalMs = parseDurationMs(file.client.ping_interval);
    if (pingIntervalMs === undefined) problems.push('client.ping_interval: expected a duration like "25s"');
  }
  let pongTimeoutMs = envDuration(env, 'HERALD_PONG_TIMEOUT', problems);
  if (pongTimeoutMs === undefined && file.client?.pong_timeout !== undefined) {
    pongTimeoutMs = parseDurationMs(file.client.pong_timeout);
    if (pongTimeoutMs === undefined) problems.push('client.pong_timeout: expected a duration like "8s"');
  }

  checkOverrides(input.overrides, problems);
  const o = input.overrides ?? {};
  const config: HeraldConfig & { warnings: string[] } = {
    port: envInt(env, 'WS_PORT', problems) ?? envInt(env, 'HERALD_PORT', problems) ?? 3002,
    host: envStr(env, 'HERALD_HOST') ?? '0.0.0.0',
    wsPaths: ['/ws', '/connection/websocket'],
    httpStream: envBool(env, 'HERALD_HTTP_STREAM', problems) ?? file.http_stream?.enabled ?? false,
    sse: envBool(env, 'HERALD_SSE', problems) ?? file.sse?.enabled ?? false,
    uniSse: envBool(env, 'HERALD_UNI_SSE', problems) ?? file.uni_sse?.enabled ?? false,
    uniSseMaxRequestBodyBytes:
      envInt(env, 'HERALD_UNI_SSE_MAX_REQUEST_BODY_SIZE', problems, 128) ??
      file.uni_sse?.max_request_body_size ??
      65_536,
    uniHttpStream: envBool(env, 'HERALD_UNI_HTTP_STREAM', problems) ?? file.uni_http_stream?.enabled ?? false,
    uniHttpStreamMaxRequestBodyBytes:
      envInt(env, 'HERALD_UNI_HTTP_STREAM_MAX_REQUEST_BODY_SIZE', problems, 128) ??
      file.uni_http_stream?.max_request_body_size ??
      65_536,
    uniWebsocket: envBool(env, 'HERALD_UNI_WEBSOCKET', problems) ?? file.uni_websocket?.enabled ?? false,
    uniWebsocketMessageSizeLimit:
      envInt(env, 'HERALD_UNI_WEBSOCKET_MESSAGE_SIZE_LIMIT', problems, 128) ??
      file.uni_websocket?.message_size_limit ??
      65_536,
    uniWebsocketJoinPushMessages:
      envBool(env, 'HERALD_UNI_WEBSOCKET_JOIN_PUSH_MESSAGES', problems) ??
      file.uni_websocket?.join_push_messages ??
      false,
    name: envStr(env, 'HERALD_NAME') ?? envStr(env, 'HOSTNAME') ?? 'herald',
    token: {
      hmacSecret: envStr(env, 'HERALD_TOKEN_SECRET') ?? fileToken?.hmac_secret_key ?? envStr(env, 'NEXTAUTH_SECRET'),
      publicKey: envStr(env, 'HERALD_TOKEN_PUBLIC_KEY') ?? fileToken?.rsa_public_key ?? fileToken?.ecdsa_public_key,
      jwksUrl: envStr(env, 'HERALD_TOKEN_JWKS_URL') ?? fileToken?.jwks_public_endpoint,
      audience: envStr(env, 'HERALD_TOKEN_AUDIENCE') ?? fileToken?.audience,
      issuer: envStr(env, 'HERALD_TOKEN_ISSUER') ?? fileToken?.issuer,
      requireExp: requireExpEnv ?? !insecure,
      ...o.token,
    },
    insecure,
    allowAnonymous:
      envBool(env, 'HERALD_ALLOW_ANONYMOUS', problems) ?? file.client?.allow_anonymous_connect_without_token ?? false,
    allowedOrigins,
    cookieRequiresOrigin: envBool(env, 'HERALD_COOKIE_REQUIRES_ORIGIN', problems) ?? true,
    apiKey: envStr(env, 'HERALD_API_KEY') ?? file.http_api?.key,
    apiInsecure: envBool(env, 'HERALD_API_INSECURE', problems) ?? file.http_api?.insecure ?? false,
    apiMaxBodyBytes: envInt(env, 'HERALD_API_MAX_BODY', problems, 1) ?? 1024 * 1024,
    apiRatePerSecond: envInt(env, 'HERALD_API_RATE', problems) ?? 0,
    apiMaxReplyBytes: envInt(env, 'HERALD_API_MAX_REPLY_SIZE', problems, 1024) ?? 16 * 1024 * 1024,
    apiMaxBatchCommands: envInt(env, 'HERALD_API_MAX_BATCH', problems, 1) ?? 1000,
    apiMaxBroadcastChannels: envInt(env, 'HERALD_API_MAX_BROADCAST', problems, 1) ?? 1000,
    engine: engineRaw === 'redis' ? 'redis' : 'memory',
    redisUrl,
    redisUrls,
    ...(redisClusterNodes ? { redisClusterNodes } : {}),
    redisPrefix: envStr(env, 'HERALD_REDIS_PREFIX') ?? 'herald',
    redisTimeoutMs: envDuration(env, 'HERALD_REDIS_TIMEOUT', problems) ?? 2000,
    redisMinReplicas: envInt(env, 'HERALD_REDIS_MIN_REPLICAS', problems) ?? 0,
    databaseUrl: envStr(env, 'HERALD_DATABASE_URL'),
    outboxMaxPayloadBytes: envInt(env, 'HERALD_OUTBOX_MAX_PAYLOAD', problems, 1024) ?? 1024 * 1024,
    outboxMaxBatchBytes: envInt(env, 'HERALD_OUTBOX_MAX_BATCH_BYTES', problems, 1024) ?? 16 * 1024 * 1024,
    outboxStuckAfterMs: envDuration(env, 'HERALD_OUTBOX_STUCK_AFTER', problems) ?? 60_000,
    outboxBatchSize: envInt(env, 'HERALD_OUTBOX_BATCH_SIZE', problems, 1),
    outboxPollIntervalMs: envInt(env, 'HERALD_OUTBOX_POLL_MS', problems, 1),
    outboxWorkers: envInt(env, 'HERALD_OUTBOX_WORKERS', problems, 1),
    pingIntervalMs: pingIntervalMs ?? 25_000,
    pongTimeoutMs: pongTimeoutMs ?? 8_000,
    maxMessageBytes: envInt(env, 'HERALD_MAX_MESSAGE_SIZE', problems, 128) ?? 65_536,
    connectTimeoutMs: envDuration(env, 'HERALD_CONNECT_TIMEOUT', problems) ?? 10_000,
    handshakeTimeoutMs: envDuration(env, 'HERALD_HANDSHAKE_TIMEOUT', problems) ?? 10_000,
    channelLimit: envInt(env, 'HERALD_CHANNEL_LIMIT', problems, 1) ?? file.client?.channel_limit ?? 128,
    userConnectionLimit:
      envInt(env, 'HERALD_USER_CONNECTION_LIMIT', problems) ?? file.client?.user_connection_limit ?? 0,
    ipConnectionLimit: envInt(env, 'HERALD_IP_CONNECTION_LIMIT', problems) ?? 0,
    commandRatePerSecond: envInt(env, 'HERALD_COMMAND_RATE', problems) ?? 100,
    maxErrors: envInt(env, 'HERALD_MAX_ERRORS', problems, 1) ?? 20,
    maxSendBufferBytes: envInt(env, 'HERALD_MAX_SEND_BUFFER', problems, 1024) ?? 1024 * 1024,
    maxReplyBytes: envInt(env, 'HERALD_MAX_REPLY_SIZE', problems, 1024) ?? 512 * 1024,
    maxJsonDepth: envInt(env, 'HERALD_MAX_JSON_DEPTH', problems, 1) ?? 64,
    maxInfoBytes: envInt(env, 'HERALD_MAX_INFO_SIZE', problems, 16) ?? 4096,
    expiredCloseDelayMs: envDuration(env, 'HERALD_EXPIRED_CLOSE_DELAY', problems) ?? 25_000,
    presenceTtlMs: envDuration(env, 'HERALD_PRESENCE_TTL', problems) ?? 60_000,
    shutdownTimeoutMs: envDuration(env, 'HERALD_SHUTDOWN_TIMEOUT', problems) ?? 10_000,
    logLevel: logLevel as HeraldConfig['logLevel'],
    channel: { withoutNamespace, namespaces },
    webhooks: webhooksFrom(file.webhooks, problems, warnings),
    proxy: loadProxyConfig(
      {
        clientProxy: file.client?.proxy,
        channelProxy: file.channel?.proxy,
        proxies: file.proxies,
        rpc: file.rpc,
      },
      [
        ['channel.without_namespace', withoutNamespace],
        ...[...namespaces].map(([name, ns]) => [`channel.namespaces ("${name}")`, ns] as const),
      ],
      problems,
      warnings,
    ),
    sharedPoll: sharedPollConfigFrom(file.shared_poll, problems),
    admin: adminFrom(
      file.admin,
      {
        enabled: envBool(env, 'HERALD_ADMIN_ENABLED', problems),
        password: envStr(env, 'HERALD_ADMIN_PASSWORD'),
        secret: envStr(env, 'HERALD_ADMIN_SECRET'),
        insecure: envBool(env, 'HERALD_ADMIN_INSECURE', problems),
        path: envStr(env, 'HERALD_ADMIN_PATH'),
      },
      input.overrides?.admin,
      problems,
      warnings,
    ),
    warnings,
  };

  const { token: _t, channel: chOverride, admin: _a, ...flat } = o;
  for (const [k, v] of Object.entries(flat)) if (v !== undefined) (config as unknown as Record<string, unknown>)[k] = v;
  if (chOverride?.withoutNamespace)
    config.channel.withoutNamespace = { ...config.channel.withoutNamespace, ...chOverride.withoutNamespace };
  if (chOverride?.namespaces) {
    for (const [name, opts] of Object.entries(chOverride.namespaces)) {
      config.channel.namespaces.set(name, {
        ...(config.channel.namespaces.get(name) ?? defaultNamespaceOptions),
        ...opts,
      });
    }
  }

  checkSharedPollNamespaces(
    [
      ['channel.without_namespace', config.channel.withoutNamespace],
      ...[...config.channel.namespaces].map(([name, ns]) => [`channel.namespaces ("${name}")`, ns] as const),
    ],
    config.sharedPoll,
    (name) => (name ? config.proxy.named.has(name) : config.proxy.sharedPollRefresh !== undefined),
    problems,
  );
  if (config.port < 0 || config.port > 65535) problems.push(`WS_PORT=${config.port}: expected 0-65535`);
  if (
    !config.insecure &&
    !config.token.hmacSecret &&
    !config.token.publicKey &&
    !config.token.jwksUrl &&
    !config.allowAnonymous
  ) {
    warnings.push(
      'no token key configured (HERALD_TOKEN_SECRET, NEXTAUTH_SECRET, HERALD_TOKEN_PUBLIC_KEY or HERALD_TOKEN_JWKS_URL): every connection will be refused unless an onConnecting hook authenticates it',
    );
  }
  if (config.insecure)
    warnings.push(
      'HERALD_CLIENT_INSECURE is on: connections need no token and every channel permission is granted. Development only, never in production.',
    );
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The options that apply to a channel: its namespace's (the part before ':'), else `without_namespace`. */
export function namespaceNameOf(channel: string): string | undefined {
  const i = channel.indexOf(':');
  return i > 0 ? channel.slice(0, i) : undefined;
}

/** REDIS_URL may list several Redis instances, comma-separated; a comma inside one URL (a password) stays. */
export function splitRedisUrls(value: string): string[] {
  return value
    .split(/,(?=\s*(?:rediss?|redis\+sentinel):\/\/)/i)
    .map((u) => u.trim())
    .filter((u) => u !== '');
}

/** HERALD_REDIS_CLUSTER_NODES: comma-separated nodes. */
export function splitClusterNodes(value: string): string[] {
  return value
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
}

/** Why one HERALD_REDIS_CLUSTER_NODES entry is not a node address, or undefined when it is one. */
function clusterNodeProblem(node: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(node)) {
    let u: URL;
    try {
      u = new URL(node);
    } catch {
      return 'not a URL';
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
      return /^redis\+sentinel:/i.test(node)
        ? 'a Cluster has no Sentinel (its replicas fail over by themselves)'
        : `${u.protocol}// is not a Redis node`;
    if (!u.hostname || !u.port) return 'needs host and port';
    if (u.pathname !== '' && u.pathname !== '/') return 'a Redis Cluster has only database 0: drop the /db';
    return undefined;
  }
  const m = /^(\[[^\]]+\]|[^:[\]/]+):(\d+)$/.exec(node);
  if (!m) return 'not host:port';
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535)) return `port ${m[2]} is out of range`;
  return undefined;
}
