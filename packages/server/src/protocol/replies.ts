import type { ClientInfo, Publication, StreamPosition } from '../engine/types.js';
import type { DisconnectInfo, ReplyErrorInfo } from './codes.js';
import { fossilPublicationData } from './fossil-delta.js';

/**
 * Every message Herald sends, as JSON text: client-protocol replies and pushes, and the server API's answers. One
 * encoder per shape, built by string concatenation. Payloads (`data`, `info`, a hook's reply data) arrive as JSON
 * text that was serialized once at the edge and are spliced in as they are, never parsed or serialized again: that
 * is what keeps fan-out to many subscribers cheap (hub.ts encodes a publication once and shares the frame).
 */

// ---- envelopes ----------------------------------------------------------------------------------------------------

/** The result of a command that has nothing to say (publish, unsubscribe, ping; API subscribe, disconnect, ...). */
export const EMPTY_RESULT = '{}';

export function encodeReply(id: number, method: string, result: string): string {
  return `{"id":${id},"${method}":${result}}`;
}

export function encodeError(id: number, error: ReplyErrorInfo): string {
  return id > 0 ? `{"id":${id},"error":${JSON.stringify(error)}}` : `{"error":${JSON.stringify(error)}}`;
}

/** The server's ping; a client's `{}` is its pong. */
export const PING_FRAME = '{}';

// ---- expiry -------------------------------------------------------------------------------------------------------

/**
 * Seconds until `expireAt` (Unix seconds) as the `ttl` of a connect, refresh, subscribe or sub_refresh result: at
 * least 1, rounded up, so a client never schedules its refresh for a moment already past.
 */
export function ttlSeconds(expireAt: number, nowSec: number): number {
  return Math.max(1, Math.ceil(expireAt - nowSec));
}

/** The `"expires":true,"ttl":N` fields of a result, or nothing when `expireAt` is 0 (never expires). */
function expiresFields(expireAt: number, nowSec: number): string | undefined {
  return expireAt > 0 ? `"expires":true,"ttl":${ttlSeconds(expireAt, nowSec)}` : undefined;
}

// ---- publications and client info --------------------------------------------------------------------------------

export function encodeClientInfo(info: ClientInfo): string {
  let s = `{"user":${JSON.stringify(info.user)},"client":${JSON.stringify(info.client)}`;
  if (info.connInfo !== undefined) s += `,"conn_info":${info.connInfo}`;
  if (info.chanInfo !== undefined) s += `,"chan_info":${info.chanInfo}`;
  return s + '}';
}

/**
 * A Publication object as JSON text (used in pushes, subscribe replies and history). `fossil` replaces the payload
 * for a subscriber that negotiated delta compression (see fossilPublicationData).
 */
export function encodePublication(pub: Publication, fossil?: { data: string; delta: boolean }): string {
  const parts: string[] = [];
  // A map removal or a map presence entry has no data (client.proto's empty bytes, left out in JSON).
  if (fossil) parts.push(`"data":${fossil.data}`);
  else if (pub.data !== '') parts.push(`"data":${pub.data}`);
  if (pub.key !== undefined) parts.push(`"key":${JSON.stringify(pub.key)}`);
  if (pub.removed) parts.push('"removed":true');
  if (fossil?.delta) parts.push('"delta":true');
  if (pub.offset > 0) parts.push(`"offset":${pub.offset}`);
  if (pub.info) parts.push(`"info":${encodeClientInfo(pub.info)}`);
  if (pub.tags && Object.keys(pub.tags).length > 0) parts.push(`"tags":${JSON.stringify(pub.tags)}`);
  return '{' + parts.join(',') + '}';
}

/**
 * A shared poll publication: a tracked key's data (JSON text) and version, or its removal (no data, no version).
 */
export function encodeKeyedPublication(
  key: string,
  data: string | undefined,
  version: number,
  removed: boolean,
): string {
  if (removed) return `{"key":${JSON.stringify(key)},"removed":true}`;
  return `{"data":${data ?? 'null'},"key":${JSON.stringify(key)}${version > 0 ? `,"version":${version}` : ''}}`;
}

/**
 * A publication list (plain, or fossil-delta for a subscriber that negotiated it) built only while it stays within
 * `maxBytes` of UTF-8: undefined as soon as it would not fit, so an oversized reply is never built whole.
 */
export function encodePublicationListWithin(
  pubs: readonly Publication[],
  maxBytes: number,
  fossil = false,
): string | undefined {
  if (pubs.length === 0) return '[]';
  const parts: string[] = [];
  let bytes = 2;
  for (let i = 0; i < pubs.length; i++) {
    const p = pubs[i]!;
    const s = fossil
      ? encodePublication(p, fossilPublicationData(i > 0 ? pubs[i - 1]!.data : undefined, p.data))
      : encodePublication(p);
    bytes += Buffer.byteLength(s, 'utf8') + (i > 0 ? 1 : 0);
    if (bytes > maxBytes) return undefined;
    parts.push(s);
  }
  return '[' + parts.join(',') + ']';
}

/**
 * A map's entries or changes as a JSON list within `maxBytes` (undefined past it). `escaped` (a fossil-delta map
 * subscription): every payload whole as a JSON string, the base of its key's next delta (a removal has none).
 */
export function encodeMapListWithin(
  pubs: readonly Publication[],
  maxBytes: number,
  escaped: boolean,
): string | undefined {
  const parts: string[] = [];
  let bytes = 2;
  for (const p of pubs) {
    const s =
      escaped && !p.removed ? encodePublication(p, fossilPublicationData(undefined, p.data)) : encodePublication(p);
    bytes += Buffer.byteLength(s, 'utf8') + (parts.length > 0 ? 1 : 0);
    if (bytes > maxBytes) return undefined;
    parts.push(s);
  }
  return '[' + parts.join(',') + ']';
}

// ---- client command results ---------------------------------------------------------------------------------------

export interface ConnectResult {
  client: string;
  version: string;
  /** Seconds between server pings; 0 sends no ping (and no `pong`). */
  pingSec: number;
  /** Unix seconds the connection expires at; 0 for never. */
  expireAt: number;
  nowSec: number;
  /** JSON text from the onConnecting hook. */
  data?: string | undefined;
  /** The HTTP-streaming / SSE session the client posts its later commands to. */
  emulation?: { session: string; node: string } | undefined;
  /** Server-side subscriptions: channel and its subscribe result (encodeSubscribeResult). */
  subs: readonly (readonly [channel: string, result: string])[];
}

export function encodeConnectResult(r: ConnectResult): string {
  let s = `{"client":${JSON.stringify(r.client)},"version":${JSON.stringify(r.version)}`;
  if (r.pingSec > 0) s += `,"ping":${r.pingSec},"pong":true`;
  const expires = expiresFields(r.expireAt, r.nowSec);
  if (expires) s += `,${expires}`;
  if (r.data !== undefined) s += `,"data":${r.data}`;
  if (r.emulation) s += `,"session":${JSON.stringify(r.emulation.session)},"node":${JSON.stringify(r.emulation.node)}`;
  if (r.subs.length > 0)
    s += `,"subs":{${r.subs.map(([channel, sub]) => `${JSON.stringify(channel)}:${sub}`).join(',')}}`;
  return s + '}';
}

export interface RefreshResult {
  client: string;
  version: string;
  expireAt: number;
  nowSec: number;
}

export function encodeRefreshResult(r: RefreshResult): string {
  const expires = expiresFields(r.expireAt, r.nowSec);
  return `{"client":${JSON.stringify(r.client)},"version":${JSON.stringify(r.version)}${expires ? `,${expires}` : ''}}`;
}

export interface SubscribeResult {
  /** Unix seconds the subscription expires at (subscription token `exp`); 0 for never. */
  expireAt: number;
  nowSec: number;
  recoverable: boolean;
  /** Fossil delta compression was negotiated. */
  delta: boolean;
  /** The stream position, for a positioned subscription. */
  position?: StreamPosition | undefined;
  /** The client asked to recover: whether it did and, when it did, the publications it missed (a JSON list). */
  recovery?: { recovered: boolean; publications?: string | undefined } | undefined;
  /** JSON text from the onSubscribe hook or the token's `subs` claim. */
  data?: string | undefined;
}

export function encodeSubscribeResult(r: SubscribeResult): string {
  const parts: string[] = [];
  const expires = expiresFields(r.expireAt, r.nowSec);
  if (expires) parts.push(expires);
  if (r.recoverable) parts.push('"recoverable":true');
  if (r.delta) parts.push('"delta":true');
  if (r.position)
    parts.push(`"epoch":${JSON.stringify(r.position.epoch)},"offset":${r.position.offset},"positioned":true`);
  if (r.recovery) {
    parts.push('"was_recovering":true');
    parts.push(`"recovered":${r.recovery.recovered}`);
    const pubs = r.recovery.publications;
    if (pubs && pubs !== '[]') parts.push(`"publications":${pubs}`);
  }
  if (r.data !== undefined) parts.push(`"data":${r.data}`);
  return '{' + parts.join(',') + '}';
}

/** A map subscribe step's result (client.proto SubscribeResult with type, phase, cursor, state). */
export interface MapSubscribeResult {
  /** The subscription type asked for, echoed (1 map, 2 map clients). */
  type: number;
  /** 2: a state page (more follow), 1: a stream page (more follow), 0: live (the subscription is active). */
  phase: 0 | 1 | 2;
  cursor?: string;
  position: StreamPosition;
  /** JSON list of state entries (encodePublicationListWithin). */
  state?: string;
  /** JSON list of stream publications. */
  publications?: string;
  recoverable: boolean;
  /** Live after a recovery from a position. */
  recovered?: boolean;
  expireAt: number;
  nowSec: number;
  delta: boolean;
  publishDebounceMs: number;
  data?: string | undefined;
}

export function encodeMapSubscribeResult(r: MapSubscribeResult): string {
  const parts: string[] = [`"type":${r.type}`];
  if (r.phase !== 0) parts.push(`"phase":${r.phase}`);
  if (r.cursor) parts.push(`"cursor":${JSON.stringify(r.cursor)}`);
  const expires = r.phase === 0 ? expiresFields(r.expireAt, r.nowSec) : undefined;
  if (expires) parts.push(expires);
  if (r.recoverable) parts.push('"recoverable":true');
  if (r.delta) parts.push('"delta":true');
  parts.push(`"epoch":${JSON.stringify(r.position.epoch)},"offset":${r.position.offset}`);
  if (r.recovered !== undefined) parts.push(`"was_recovering":true,"recovered":${r.recovered}`);
  if (r.state && r.state !== '[]') parts.push(`"state":${r.state}`);
  if (r.publications && r.publications !== '[]') parts.push(`"publications":${r.publications}`);
  if (r.publishDebounceMs > 0) parts.push(`"publish_debounce":${r.publishDebounceMs}`);
  if (r.data !== undefined) parts.push(`"data":${r.data}`);
  return '{' + parts.join(',') + '}';
}

export function encodeSubRefreshResult(expireAt: number, nowSec: number, items?: readonly string[]): string {
  const parts: string[] = [];
  const expires = expiresFields(expireAt, nowSec);
  if (expires) parts.push(expires);
  if (items && items.length > 0) parts.push(`"items":[${items.join(',')}]`);
  return '{' + parts.join(',') + '}';
}

/** A history result (client `history` and API `history`): `publications` is a JSON list (encodePublicationListWithin). */
export function encodeHistoryResult(publications: string, position: StreamPosition): string {
  return `{"publications":${publications},"epoch":${JSON.stringify(position.epoch)},"offset":${position.offset}}`;
}

/**
 * A presence result (client `presence` and API `presence`) built only while `overhead` plus its entries stay within
 * `maxBytes` of UTF-8: undefined as soon as they would not fit. `bytes` is that count (overhead included), which the
 * API charges to its answer's budget.
 */
export function encodePresenceResultWithin(
  entries: ReadonlyMap<string, ClientInfo>,
  maxBytes: number,
  overhead: number,
): { json: string; bytes: number } | undefined {
  const parts: string[] = [];
  let bytes = overhead;
  for (const [client, info] of entries) {
    const part = `${JSON.stringify(client)}:${encodeClientInfo(info)}`;
    bytes += Buffer.byteLength(part, 'utf8') + 1;
    if (bytes > maxBytes) return undefined;
    parts.push(part);
  }
  return { json: `{"presence":{${parts.join(',')}}}`, bytes };
}

export function encodePresenceStatsResult(s: { numClients: number; numUsers: number }): string {
  return `{"num_clients":${s.numClients},"num_users":${s.numUsers}}`;
}

/** `data` is the JSON text of the onRpc hook's answer. */
export function encodeRpcResult(data: string): string {
  return `{"data":${data}}`;
}

// ---- pushes -------------------------------------------------------------------------------------------------------

/** `channelJson` is JSON.stringify(channel), computed once per channel by the hub. */
export function encodePubPush(
  channelJson: string,
  pub: Publication,
  fossil?: { data: string; delta: boolean },
): string {
  return `{"push":{"channel":${channelJson},"pub":${encodePublication(pub, fossil)}}}`;
}

/** A shared poll change pushed to the clients tracking its key. */
export function encodeKeyedPubPush(
  channelJson: string,
  key: string,
  data: string | undefined,
  version: number,
  removed: boolean,
): string {
  return `{"push":{"channel":${channelJson},"pub":${encodeKeyedPublication(key, data, version, removed)}}}`;
}

export function encodeJoinPush(channelJson: string, info: ClientInfo): string {
  return `{"push":{"channel":${channelJson},"join":{"info":${encodeClientInfo(info)}}}}`;
}

export function encodeLeavePush(channelJson: string, info: ClientInfo): string {
  return `{"push":{"channel":${channelJson},"leave":{"info":${encodeClientInfo(info)}}}}`;
}

export function encodeUnsubscribePush(channel: string, code: number, reason: string): string {
  return `{"push":{"channel":${JSON.stringify(channel)},"unsubscribe":{"code":${code},"reason":${JSON.stringify(reason)}}}}`;
}

/** A server-side subscription made after connect; `result` is its subscribe result (encodeSubscribeResult). */
export function encodeSubscribePush(channel: string, result: string): string {
  return `{"push":{"channel":${JSON.stringify(channel)},"subscribe":${result}}}`;
}

export function encodeMessagePush(data: string): string {
  return `{"push":{"message":{"data":${data}}}}`;
}

export function encodeDisconnectPush(d: DisconnectInfo): string {
  return `{"push":{"disconnect":{"code":${d.code},"reason":${JSON.stringify(d.reason)}}}}`;
}

// ---- server API answers (HTTP /api/<method>, in process, outbox) --------------------------------------------------

/** An HTTP API answer: `{"result": …}`; also one entry of a broadcast's responses. */
export function encodeApiResult(result: string): string {
  return `{"result":${result}}`;
}

/** An HTTP API error answer: `{"error": {code, message}}`; also a failed broadcast response or batch reply. */
export function encodeApiError(error: ReplyErrorInfo): string {
  return `{"error":${JSON.stringify(error)}}`;
}

export function encodePublishResult(position: StreamPosition): string {
  return `{"offset":${position.offset},"epoch":${JSON.stringify(position.epoch)}}`;
}

/** `responses` are encodeApiResult / encodeApiError texts, one per channel in the broadcast's order. */
/** map_publish / map_remove: Centrifugo's MapPublishResult / MapRemoveResult (suppressed fields only when set). */
export function encodeMapUpdateResult(r: {
  offset: number;
  epoch: string;
  suppressed: boolean;
  suppressReason?: string;
}): string {
  let s = `{"offset":${r.offset},"epoch":${JSON.stringify(r.epoch)}`;
  if (r.suppressed) s += ',"suppressed":true';
  if (r.suppressReason) s += `,"suppress_reason":${JSON.stringify(r.suppressReason)}`;
  return s + '}';
}

export function encodeBroadcastResult(responses: readonly string[]): string {
  return `{"responses":[${responses.join(',')}]}`;
}

/**
 * The API `channels` result built only while `overhead` plus its entries stay within `maxBytes` of UTF-8 (undefined
 * otherwise); `bytes` is that count.
 */
export function encodeChannelsResultWithin(
  channels: Iterable<readonly [name: string, numClients: number]>,
  maxBytes: number,
  overhead: number,
): { json: string; bytes: number } | undefined {
  const parts: string[] = [];
  let bytes = overhead;
  for (const [name, n] of channels) {
    const part = `${JSON.stringify(name)}:{"num_clients":${n}}`;
    bytes += Buffer.byteLength(part, 'utf8') + 1;
    if (bytes > maxBytes) return undefined;
    parts.push(part);
  }
  return { json: `{"channels":{${parts.join(',')}}}`, bytes };
}

export function encodeInfoResult(nodes: readonly object[]): string {
  return `{"nodes":${JSON.stringify(nodes)}}`;
}

/** One entry of a batch's replies: `{"<method>": result}`. */
export function encodeBatchReply(method: string, result: string): string {
  return `{"${method}":${result}}`;
}

/** `replies` are encodeBatchReply / encodeApiError texts in the batch's order. */
export function encodeBatchResult(replies: readonly string[]): string {
  return `{"replies":[${replies.join(',')}]}`;
}
