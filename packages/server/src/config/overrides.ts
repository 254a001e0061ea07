import { z } from 'zod';
import { closest } from './closest.js';
import { booleanNamespaceKeys, proxyNameNamespaceKeys } from './namespace.js';
import { adminOverridesShape } from './admin.js';

/**
 * The explicit settings of `createHerald({ config })` / `loadConfig({ overrides })`, checked like the config file:
 * a wrong type or an out-of-range value is a problem naming the key and what is expected, a misspelt key is a
 * problem naming the key meant, instead of being cast into the running configuration. The minimums are the
 * environment variables' (config/index.ts).
 */
const SOURCE = 'createHerald({ config })';

const count = (min = 0) => z.number().int().min(min).optional();
const ms = z.number().finite().min(0).optional();
const str = z.string().optional();
const bool = z.boolean().optional();

const nsShape: Record<string, z.ZodType> = {};
for (const key of booleanNamespaceKeys) nsShape[key] = bool;
Object.assign(nsShape, {
  history_size: z.number().int().min(0).max(1_000_000).optional(),
  history_ttl_ms: ms,
  history_meta_ttl_ms: ms,
  allowed_delta_types: z.array(z.literal('fossil')).optional(),
  force_recovery_mode: z.enum(['stream', 'cache']).optional(),
});
for (const key of proxyNameNamespaceKeys) nsShape[key] = str;
const nsSchema = z.looseObject(nsShape);

const tokenShape = {
  hmacSecret: z.string().min(1).optional(),
  publicKey: str,
  jwksUrl: z.string().url().optional(),
  audience: str,
  issuer: str,
  requireExp: bool,
};

const channelShape = {
  withoutNamespace: nsSchema.optional(),
  namespaces: z
    .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "-" or "." (1-64 characters)'), nsSchema)
    .optional(),
};

const overridesShape = {
  port: z.number().int().min(0).max(65535).optional(),
  host: str,
  wsPaths: z.array(z.string().startsWith('/', 'a path starting with "/"')).optional(),
  httpStream: bool,
  sse: bool,
  uniSse: bool,
  uniSseMaxRequestBodyBytes: count(128),
  uniHttpStream: bool,
  uniHttpStreamMaxRequestBodyBytes: count(128),
  uniWebsocket: bool,
  uniWebsocketMessageSizeLimit: count(128),
  uniWebsocketJoinPushMessages: bool,
  name: str,
  token: z.looseObject(tokenShape).optional(),
  insecure: bool,
  allowAnonymous: bool,
  allowedOrigins: z.array(z.string()).optional(),
  cookieRequiresOrigin: bool,
  apiKey: str,
  apiInsecure: bool,
  apiMaxBodyBytes: count(1),
  apiRatePerSecond: count(),
  apiMaxReplyBytes: count(1024),
  apiMaxBatchCommands: count(1),
  apiMaxBroadcastChannels: count(1),
  engine: z.enum(['memory', 'redis']).optional(),
  redisUrl: str,
  redisUrls: z.array(z.string()).optional(),
  redisClusterNodes: z.array(z.string()).optional(),
  redisPrefix: z
    .string()
    .regex(/^[^{}\s]*$/, 'must not contain { } or spaces')
    .optional(),
  redisTimeoutMs: ms,
  redisMinReplicas: count(),
  databaseUrl: str,
  outboxMaxPayloadBytes: count(1024),
  outboxMaxBatchBytes: count(1024),
  outboxStuckAfterMs: ms,
  outboxBatchSize: count(1),
  outboxPollIntervalMs: count(1),
  outboxWorkers: count(1),
  pingIntervalMs: ms,
  pongTimeoutMs: ms,
  maxMessageBytes: count(128),
  connectTimeoutMs: ms,
  handshakeTimeoutMs: ms,
  channelLimit: count(1),
  userConnectionLimit: count(),
  ipConnectionLimit: count(),
  commandRatePerSecond: count(),
  maxErrors: count(1),
  maxSendBufferBytes: count(1024),
  maxReplyBytes: count(1024),
  maxJsonDepth: count(1),
  maxInfoBytes: count(16),
  expiredCloseDelayMs: ms,
  presenceTtlMs: ms,
  shutdownTimeoutMs: ms,
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
  channel: z.looseObject(channelShape).optional(),
  admin: z.looseObject(adminOverridesShape).optional(),
};
const overridesSchema = z.looseObject(overridesShape);

const knownNamespaceKeys = new Set(Object.keys(nsShape));

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKeys(section: unknown, known: ReadonlySet<string>, where: string, problems: string[]): void {
  if (!isRecord(section)) return;
  for (const key of Object.keys(section)) {
    if (known.has(key)) continue;
    const at = where ? `${where}.${key}` : key;
    const guess = closest(key, known);
    problems.push(
      `${SOURCE}: ${at}: unknown option${guess ? `; did you mean "${where ? `${where}.` : ''}${guess}"?` : ''}`,
    );
  }
}

/** Adds a problem for every wrong type, out-of-range value and unknown key in `overrides`; nothing when they are valid. */
export function checkOverrides(overrides: unknown, problems: string[]): void {
  if (overrides === undefined || overrides === null) return;
  const parsed = overridesSchema.safeParse(overrides);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path
        .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
        .join('.')
        .replace(/\.\[/g, '[');
      problems.push(`${SOURCE}: ${path || '(root)'}: ${issue.message}`);
    }
  }
  if (!isRecord(overrides)) return;
  const o = overrides;
  unknownKeys(o, new Set(Object.keys(overridesShape)), '', problems);
  unknownKeys(o.token, new Set(Object.keys(tokenShape)), 'token', problems);
  unknownKeys(o.channel, new Set(Object.keys(channelShape)), 'channel', problems);
  unknownKeys(o.admin, new Set(Object.keys(adminOverridesShape)), 'admin', problems);
  const channel = isRecord(o.channel) ? o.channel : {};
  unknownKeys(channel.withoutNamespace, knownNamespaceKeys, 'channel.withoutNamespace', problems);
  if (isRecord(channel.namespaces)) {
    for (const [name, ns] of Object.entries(channel.namespaces))
      unknownKeys(ns, knownNamespaceKeys, `channel.namespaces.${name}`, problems);
  }
}
