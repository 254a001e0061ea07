import { z } from 'zod';

/**
 * The JSON a proxy backend answers, as Centrifugo v6 defines it (its proxy.proto, JSON-encoded): `result`, `error`
 * or `disconnect`. Unknown fields are ignored (newer Centrifugo fields); `null` counts as absent, as Go's decoder does.
 */

const opt = <T extends z.ZodType>(s: T) => s.nullish();

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

export const errorSchema = z.looseObject({
  code: z.number().int().min(1).max(4_294_967_295),
  message: opt(z.string()),
  temporary: opt(z.boolean()),
});

export const disconnectSchema = z.looseObject({
  code: z.number().int().min(3000).max(4999),
  reason: opt(z.string().refine((s) => utf8Bytes(s) <= 123, 'at most 123 bytes (a WebSocket close reason)')),
});

const unixSeconds = z.number().int().min(0);
const boolValue = opt(z.looseObject({ value: z.boolean() }));

const overrideSchema = z.looseObject({
  presence: boolValue,
  join_leave: boolValue,
  force_push_join_leave: boolValue,
  force_positioning: boolValue,
  force_recovery: boolValue,
});

const subscribeOptionsSchema = z.looseObject({
  info: opt(z.unknown()),
  b64info: opt(z.string()),
  data: opt(z.unknown()),
  b64data: opt(z.string()),
  override: opt(overrideSchema),
});

export const connectResultSchema = z.looseObject({
  user: opt(z.string()),
  expire_at: opt(unixSeconds),
  info: opt(z.unknown()),
  b64info: opt(z.string()),
  data: opt(z.unknown()),
  b64data: opt(z.string()),
  channels: opt(z.array(z.string())),
  subs: opt(z.record(z.string(), subscribeOptionsSchema)),
  meta: opt(z.unknown()),
});

export const refreshResultSchema = z.looseObject({
  expired: opt(z.boolean()),
  expire_at: opt(unixSeconds),
  info: opt(z.unknown()),
  b64info: opt(z.string()),
  meta: opt(z.unknown()),
});

export const subscribeResultSchema = z.looseObject({
  info: opt(z.unknown()),
  b64info: opt(z.string()),
  data: opt(z.unknown()),
  b64data: opt(z.string()),
  override: opt(overrideSchema),
  expire_at: opt(unixSeconds),
});

export const publishResultSchema = z.looseObject({
  data: opt(z.unknown()),
  b64data: opt(z.string()),
  skip_history: opt(z.boolean()),
  tags: opt(z.record(z.string(), z.string())),
  idempotency_key: opt(z.string()),
});

export const subRefreshResultSchema = z.looseObject({
  expired: opt(z.boolean()),
  expire_at: opt(unixSeconds),
  info: opt(z.unknown()),
  b64info: opt(z.string()),
});

/** One item of a shared poll refresh answer: its current data (or `removed`), with a version in versioned mode. */
const sharedPollItemSchema = z.looseObject({
  key: z.string(),
  data: opt(z.unknown()),
  b64data: opt(z.string()),
  version: opt(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)),
  removed: opt(z.boolean()),
});

export const sharedPollRefreshResultSchema = z.looseObject({
  items: opt(z.array(sharedPollItemSchema)),
  epoch: opt(z.string().max(256)),
});

export const rpcResultSchema = z.looseObject({
  data: opt(z.unknown()),
  b64data: opt(z.string()),
});

/** A whole answer: `disconnect` wins over `error`, which wins over `result` (Centrifugo's order). */
export function answerSchema<R extends z.ZodType>(result: R) {
  return z.looseObject({
    result: opt(result),
    error: opt(errorSchema),
    disconnect: opt(disconnectSchema),
  });
}

export type ConnectResult = z.infer<typeof connectResultSchema>;
export type SubscribeOverride = z.infer<typeof overrideSchema>;
