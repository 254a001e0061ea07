import type { Registry } from 'prom-client';
import type { z } from 'zod';
import type { NamespaceOptions } from '../config/namespace.js';
import type { ProxyConfig, ProxyEndpoint } from '../config/proxy.js';
import { Disconnect, ErrorCode, HeraldDisconnect, HeraldError, type DisconnectInfo } from '../protocol/codes.js';
import type { UpgradeRequestInfo } from '../transport/connection.js';
import {
  answerSchema,
  connectResultSchema,
  publishResultSchema,
  refreshResultSchema,
  rpcResultSchema,
  sharedPollRefreshResultSchema,
  subRefreshResultSchema,
  subscribeResultSchema,
  type SubscribeOverride,
} from './answers.js';
import { ProxyCallError, ProxyHttpClient } from './http-client.js';
import { proxyMetrics, type ProxyKind, type ProxyMetrics, type ProxyOutcome } from './metrics.js';

/** What a proxy call knows of the connection it is made for. */
export interface ProxyConnection {
  client: string;
  /** '' before connect. */
  user: string;
  request: UpgradeRequestInfo;
  /** The connect command's `headers` map (headers emulation), forwarded only when listed in emulated_headers. */
  emulatedHeaders?: Record<string, string>;
  /** The connection's `meta` from the connect proxy (sent when include_connection_meta). */
  meta?: unknown;
}

/** What the connect proxy decided (JSON texts where the session keeps text). */
export interface ConnectGrant {
  user: string;
  expireAt?: number;
  info?: string;
  data?: string;
  channels?: string[];
  subs?: Record<string, { info?: string; data?: string }>;
  meta?: unknown;
}

export interface SubscribeGrant {
  info?: string;
  data?: string;
  expireAt: number;
  /** Namespace options this subscription overrides (`override` in the answer). */
  override: Partial<Pick<NamespaceOptions, OverrideKey>>;
}

export interface PublishGrant {
  /** Present when the backend replaced the data (`data` / `b64data`). */
  replaced?: { data: unknown };
  tags?: Record<string, string>;
  idempotencyKey?: string;
  skipHistory: boolean;
}

/** One key's state in a shared poll refresh answer; `data` is JSON text, absent when the backend sent none. */
export interface SharedPollItem {
  key: string;
  data?: string;
  version: number;
  removed: boolean;
}

/** A shared poll refresh answer: the items the backend sent (others are unchanged) and its epoch when it gave one. */
export interface SharedPollAnswer {
  items: SharedPollItem[];
  epoch?: string;
}

/** What a shared poll refresh call is made for: no client, the channel's poller. */
const POLLER_CONNECTION: ProxyConnection = {
  client: '',
  user: '',
  request: { headers: {}, remoteAddress: '', url: '' },
};

/** A refresh's outcome; a failed call keeps the connection for 60 s more and tries again (Centrifugo's rule). */
export type RefreshOutcome =
  { expired: true } | { expired: false; expireAt: number; info?: string; meta?: unknown; failed?: boolean };

type OverrideKey = 'presence' | 'join_leave' | 'force_push_join_leave' | 'force_positioning' | 'force_recovery';
const overrideKeys: OverrideKey[] = [
  'presence',
  'join_leave',
  'force_push_join_leave',
  'force_positioning',
  'force_recovery',
];

/** A refresh proxy that failed gives the connection (or subscription) this long before asking again. */
export const REFRESH_RETRY_SEC = 60;

type Kind = ProxyKind;

export interface ProxiesOptions {
  warn(obj: object, msg: string): void;
  /** HERALD_MAX_INFO_SIZE: bytes of `info` a proxy may attach (as for tokens). */
  maxInfoBytes: number;
  /** HERALD_MAX_JSON_DEPTH. */
  maxJsonDepth: number;
  /** The registry of /metrics, for herald_proxy_* (proxy/metrics.ts); no metrics when absent. */
  registry?: Registry;
}

/** The client's transport as Centrifugo names it in proxy requests. */
function transportName(request: UpgradeRequestInfo): string {
  const path = request.url.split('?')[0] ?? '';
  for (const name of ['uni_sse', 'uni_http_stream', 'uni_websocket', 'sse', 'http_stream'])
    if (path.endsWith(`/connection/${name}`)) return name;
  return 'websocket';
}

/** The whole-answer schema of each result schema, built once. */
const answerSchemas = new Map<z.ZodType, ReturnType<typeof answerSchema>>();

/** An answer that is JSON but not the shape Centrifugo defines: error 151 (or 3051 on connect). */
class ShapeError extends Error {}

/**
 * The proxies of one node: an HTTP client per configured endpoint, the routing of namespaces and RPC methods to them,
 * and the translation of backend answers into what a session applies. Every failure becomes a protocol error (150 /
 * 151, temporary) or a disconnect (3050 / 3051 on connect), with one warning line naming the proxy.
 */
export class Proxies {
  private readonly clients = new Map<ProxyEndpoint, ProxyHttpClient>();
  private readonly metrics: ProxyMetrics | undefined;

  constructor(
    private readonly config: ProxyConfig,
    private readonly opts: ProxiesOptions,
  ) {
    this.metrics = opts.registry ? proxyMetrics(opts.registry) : undefined;
  }

  /** True when any proxy is configured (else the node has no Proxies). */
  static configured(config: ProxyConfig): boolean {
    return Boolean(
      config.connect ||
      config.refresh ||
      config.subscribe ||
      config.publish ||
      config.subRefresh ||
      config.sharedPollRefresh ||
      config.rpc ||
      config.named.size > 0,
    );
  }

  get connectEnabled(): boolean {
    return this.config.connect !== undefined;
  }

  /** Herald refreshes expiring connections through the refresh proxy; connect replies then carry no `ttl`. */
  get refreshEnabled(): boolean {
    return this.config.refresh !== undefined;
  }

  subscribeEnabled(o: NamespaceOptions): boolean {
    return o.subscribe_proxy_enabled;
  }

  /** Some namespace may send its publications through the publish proxy. */
  get publishConfigured(): boolean {
    return this.config.publish !== undefined;
  }

  publishEnabled(o: NamespaceOptions): boolean {
    return o.publish_proxy_enabled;
  }

  /** Herald refreshes expiring subscriptions of the namespace through the sub_refresh proxy. */
  subRefreshEnabled(o: NamespaceOptions): boolean {
    return o.sub_refresh_proxy_enabled;
  }

  /**
   * How an RPC method is answered: 'proxy' when its namespace (the part before ':') has proxy_enabled, 'disabled' when
   * the namespace is known without it, 'unknown' for a namespace not in rpc.namespaces.
   */
  rpcRoute(method: string): 'proxy' | 'disabled' | 'unknown' {
    const i = method.indexOf(':');
    const ns = i > 0 ? this.config.rpcNamespaces.get(method.slice(0, i)) : this.config.rpcWithoutNamespace;
    if (!ns) return 'unknown';
    return ns.proxyEnabled ? 'proxy' : 'disabled';
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  // ---- calls -----------------------------------------------------------------------------------------------

  async connect(
    conn: ProxyConnection,
    p: { name?: string; version?: string; data?: unknown },
  ): Promise<ConnectGrant | undefined> {
    const endpoint = this.config.connect;
    if (!endpoint) throw new HeraldError(ErrorCode.notAvailable, 'not available: no connect proxy is configured');
    const body: Record<string, unknown> = this.base(conn, endpoint, false);
    if (p.name) body.name = p.name;
    if (p.version) body.version = p.version;
    if (p.data !== undefined) body.data = p.data;
    return this.call('connect', endpoint, conn, body, connectResultSchema, (r) => {
      if (!r) return undefined;
      const grant: ConnectGrant = { user: r.user ?? '' };
      if (r.expire_at) grant.expireAt = r.expire_at;
      const info = this.payload(r.info, r.b64info, 'info');
      if (info !== undefined) grant.info = this.info(info, 'info');
      const data = this.payload(r.data, r.b64data, 'data');
      if (data !== undefined) grant.data = data;
      if (r.channels && r.channels.length > 0) grant.channels = r.channels;
      if (r.subs) {
        grant.subs = {};
        for (const [channel, o] of Object.entries(r.subs)) {
          const sub: { info?: string; data?: string } = {};
          const si = this.payload(o.info, o.b64info, `subs["${channel}"].info`);
          if (si !== undefined) sub.info = this.info(si, `subs["${channel}"].info`);
          const sd = this.payload(o.data, o.b64data, `subs["${channel}"].data`);
          if (sd !== undefined) sub.data = sd;
          grant.subs[channel] = sub;
        }
      }
      if (r.meta !== undefined && r.meta !== null) grant.meta = r.meta;
      return grant;
    });
  }

  /** Never throws: a failed call keeps the connection REFRESH_RETRY_SEC longer (logged). */
  async refresh(conn: ProxyConnection): Promise<RefreshOutcome> {
    const endpoint = this.config.refresh;
    if (!endpoint) return { expired: true };
    const body = this.base(conn, endpoint, true);
    return this.refreshLike('refresh', endpoint, conn, body, refreshResultSchema);
  }

  async subscribe(
    conn: ProxyConnection,
    o: NamespaceOptions,
    p: { channel: string; token?: string; data?: unknown },
  ): Promise<SubscribeGrant> {
    const endpoint = this.channelEndpoint('subscribe', o.subscribe_proxy_name);
    const body = this.base(conn, endpoint, true);
    body.channel = p.channel;
    if (p.token) body.token = p.token;
    if (p.data !== undefined) body.data = p.data;
    return this.call('subscribe', endpoint, conn, body, subscribeResultSchema, (r) => {
      const grant: SubscribeGrant = { expireAt: r?.expire_at ?? 0, override: {} };
      if (!r) return grant;
      const info = this.payload(r.info, r.b64info, 'info');
      if (info !== undefined) grant.info = this.info(info, 'info');
      const data = this.payload(r.data, r.b64data, 'data');
      if (data !== undefined) grant.data = data;
      grant.override = overrides(r.override ?? undefined);
      return grant;
    });
  }

  async publish(
    conn: ProxyConnection,
    o: NamespaceOptions,
    p: { channel: string; data: unknown },
  ): Promise<PublishGrant> {
    const endpoint = this.channelEndpoint('publish', o.publish_proxy_name);
    const body = this.base(conn, endpoint, true);
    body.channel = p.channel;
    body.data = p.data;
    return this.call('publish', endpoint, conn, body, publishResultSchema, (r) => {
      const grant: PublishGrant = { skipHistory: r?.skip_history === true };
      if (!r) return grant;
      const data = this.payload(r.data, r.b64data, 'data');
      if (data !== undefined) grant.replaced = { data: JSON.parse(data) as unknown };
      if (r.tags && Object.keys(r.tags).length > 0) grant.tags = r.tags;
      if (r.idempotency_key) grant.idempotencyKey = r.idempotency_key;
      return grant;
    });
  }

  /** Never throws: a failed call keeps the subscription REFRESH_RETRY_SEC longer (logged). */
  async subRefresh(conn: ProxyConnection, o: NamespaceOptions, channel: string): Promise<RefreshOutcome> {
    let endpoint: ProxyEndpoint;
    try {
      endpoint = this.channelEndpoint('sub_refresh', o.sub_refresh_proxy_name);
    } catch {
      return { expired: true };
    }
    const body = this.base(conn, endpoint, true);
    body.channel = channel;
    return this.refreshLike('sub_refresh', endpoint, conn, body, subRefreshResultSchema);
  }

  /** True when the shared poll refresh proxy `name` ('' for channel.proxy.shared_poll_refresh) is configured. */
  hasSharedPollRefresh(name: string): boolean {
    return (name === '' ? this.config.sharedPollRefresh : this.config.named.get(name)) !== undefined;
  }

  /**
   * Asks the app's backend for the current data of tracked keys (`items`: `{key}`, or `{key, version}` in versioned
   * mode). Throws HeraldError 150 / 151 when the call fails or answers the wrong shape (logged), or the backend's own
   * error.
   */
  async sharedPollRefresh(
    name: string,
    body: { channel: string; items: { key: string; version?: number }[] },
  ): Promise<SharedPollAnswer> {
    const endpoint = this.named('shared_poll_refresh', name, this.config.sharedPollRefresh);
    return this.call(
      'shared_poll_refresh',
      endpoint,
      POLLER_CONNECTION,
      { channel: body.channel, items: body.items },
      sharedPollRefreshResultSchema,
      (r) => {
        const out: SharedPollAnswer = { items: [] };
        if (!r) return out;
        if (r.epoch) out.epoch = r.epoch;
        for (const it of r.items ?? []) {
          const item: SharedPollItem = { key: it.key, version: it.version ?? 0, removed: it.removed === true };
          const data = this.payload(it.data, it.b64data, `items.data of "${it.key.slice(0, 64)}"`);
          if (data !== undefined) item.data = data;
          out.items.push(item);
        }
        return out;
      },
    );
  }

  async rpc(conn: ProxyConnection, p: { method: string; data: unknown }): Promise<string> {
    const i = p.method.indexOf(':');
    const ns = i > 0 ? this.config.rpcNamespaces.get(p.method.slice(0, i)) : this.config.rpcWithoutNamespace;
    const endpoint = this.named('rpc', ns?.proxyName ?? '', this.config.rpc);
    const body = this.base(conn, endpoint, true);
    if (p.method) body.method = p.method;
    if (p.data !== undefined) body.data = p.data;
    return this.call(
      'rpc',
      endpoint,
      conn,
      body,
      rpcResultSchema,
      (r) => (r ? this.payload(r.data, r.b64data, 'data') : undefined) ?? 'null',
    );
  }

  // ---- plumbing --------------------------------------------------------------------------------------------

  private channelEndpoint(kind: 'subscribe' | 'publish' | 'sub_refresh', name: string): ProxyEndpoint {
    const fallback =
      kind === 'subscribe' ? this.config.subscribe : kind === 'publish' ? this.config.publish : this.config.subRefresh;
    return this.named(kind, name, fallback);
  }

  private named(kind: Kind, name: string, fallback: ProxyEndpoint | undefined): ProxyEndpoint {
    const e = name === '' || name === 'default' ? fallback : this.config.named.get(name);
    if (!e)
      throw new HeraldError(
        ErrorCode.notAvailable,
        `not available: the ${kind} proxy${name ? ` "${name}"` : ''} is enabled for this namespace but not configured`,
      );
    return e;
  }

  private client(endpoint: ProxyEndpoint): ProxyHttpClient {
    let c = this.clients.get(endpoint);
    if (!c) {
      // The answer's envelope ({"result":{"data":…}}) adds its own levels to the data's.
      c = new ProxyHttpClient(endpoint, this.opts.maxJsonDepth + 4);
      this.clients.set(endpoint, c);
    }
    return c;
  }

  private base(conn: ProxyConnection, endpoint: ProxyEndpoint, withUser: boolean): Record<string, unknown> {
    const body: Record<string, unknown> = {
      client: conn.client,
      transport: transportName(conn.request),
      protocol: 'json',
      encoding: 'json',
    };
    if (withUser) body.user = conn.user;
    if (withUser && endpoint.includeConnectionMeta && conn.meta !== undefined) body.meta = conn.meta;
    return body;
  }

  /** Static headers, then emulated ones, then the connection request's: later sources win (Centrifugo's order). */
  private headers(endpoint: ProxyEndpoint, conn: ProxyConnection): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(endpoint.staticHeaders)) out[k.toLowerCase()] = v;
    if (conn.emulatedHeaders && endpoint.emulatedHeaders.length > 0) {
      for (const [k, v] of Object.entries(conn.emulatedHeaders)) {
        const name = k.toLowerCase();
        if (typeof v === 'string' && endpoint.emulatedHeaders.includes(name) && validHeaderValue(v)) out[name] = v;
      }
    }
    for (const name of endpoint.httpHeaders) {
      const v = conn.request.headers[name];
      if (typeof v === 'string') out[name] = v;
      else if (Array.isArray(v)) out[name] = v.join(', ');
    }
    return out;
  }

  /**
   * Calls the backend and runs `build` over the answer's `result` (undefined for an `error` answer to a refresh). A
   * failed call, an answer of the wrong shape and a ShapeError from `build` (bad b64, info too large) warn and throw
   * 150 / 151 (or 3050 / 3051 on connect); every call is counted in herald_proxy_* by its outcome.
   */
  private async call<R extends z.ZodType, T>(
    kind: Kind,
    endpoint: ProxyEndpoint,
    conn: ProxyConnection,
    body: Record<string, unknown>,
    result: R,
    build: (r: z.infer<R> | null | undefined) => T,
  ): Promise<T> {
    const record = this.metrics?.start(endpoint.name, kind);
    let outcome: ProxyOutcome = 'bad_answer';
    try {
      let raw: unknown;
      try {
        raw = await this.client(endpoint).call(body, this.headers(endpoint, conn));
      } catch (err) {
        if (!(err instanceof ProxyCallError)) throw err;
        outcome = err.reason;
        const transformed = err.status !== undefined ? this.transform(endpoint, err.status) : undefined;
        if (transformed) throw transformed;
        this.warn(kind, endpoint, conn, err.message);
        throw this.failure(kind, err.kind, err.message);
      }
      let schema = answerSchemas.get(result);
      if (!schema) answerSchemas.set(result, (schema = answerSchema(result)));
      const parsed = schema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue ? issue.path.join('.') || '(root)' : '(root)';
        const problem = `answered JSON of the wrong shape: ${where}: ${issue?.message ?? 'invalid'}`;
        this.warn(kind, endpoint, conn, problem);
        throw this.failure(kind, 'invalid', problem);
      }
      const a = parsed.data;
      if (a.disconnect) {
        outcome = 'disconnect';
        throw new HeraldDisconnect(disconnectInfo(a.disconnect.code, a.disconnect.reason ?? ''));
      }
      let r: z.infer<R> | null | undefined;
      if (a.error) {
        outcome = 'error';
        if (kind !== 'refresh' && kind !== 'sub_refresh')
          throw new HeraldError(a.error.code, a.error.message ?? '', a.error.temporary ?? false);
      } else r = a.result as z.infer<R> | null | undefined;
      try {
        const out = build(r);
        if (!a.error) outcome = 'ok';
        return out;
      } catch (err) {
        if (!(err instanceof ShapeError)) throw err;
        this.warn(kind, endpoint, conn, err.message);
        throw this.failure(kind, 'invalid', err.message);
      }
    } finally {
      record?.(outcome);
    }
  }

  private async refreshLike(
    kind: 'refresh' | 'sub_refresh',
    endpoint: ProxyEndpoint,
    conn: ProxyConnection,
    body: Record<string, unknown>,
    schema: typeof refreshResultSchema | typeof subRefreshResultSchema,
  ): Promise<RefreshOutcome> {
    try {
      return await this.call(kind, endpoint, conn, body, schema, (answer): RefreshOutcome => {
        const r = answer as z.infer<typeof refreshResultSchema> | null | undefined;
        if (!r || r.expired === true) return { expired: true };
        const out: RefreshOutcome = { expired: false, expireAt: r.expire_at ?? 0 };
        const info = this.payload(r.info, r.b64info, 'info');
        if (info !== undefined) out.info = this.info(info, 'info');
        if (r.meta !== undefined && r.meta !== null) out.meta = r.meta;
        return out;
      });
    } catch (err) {
      // A `disconnect` answer or a transformed status: refresh answers cannot disconnect (Centrifugo), so it expires.
      if (err instanceof HeraldDisconnect) return { expired: true };
      // Any other failure (logged by call): the connection or subscription keeps REFRESH_RETRY_SEC more.
      return { expired: false, expireAt: Math.floor(Date.now() / 1000) + REFRESH_RETRY_SEC, failed: true };
    }
  }

  private transform(endpoint: ProxyEndpoint, status: number): Error | undefined {
    const t = endpoint.statusTransforms.find((x) => x.statusCode === status);
    if (!t) return undefined;
    if (t.toError) return new HeraldError(t.toError.code, t.toError.message, t.toError.temporary);
    if (t.toDisconnect) return new HeraldDisconnect(disconnectInfo(t.toDisconnect.code, t.toDisconnect.reason));
    return undefined;
  }

  private failure(kind: Kind, why: 'unavailable' | 'invalid', detail: string): Error {
    if (kind === 'connect')
      return new HeraldDisconnect(why === 'unavailable' ? Disconnect.proxyUnavailable : Disconnect.proxyInvalidAnswer);
    if (why === 'unavailable')
      return new HeraldError(
        ErrorCode.proxyUnavailable,
        `proxy unavailable: the app's ${kind} backend ${detail}; retry later`,
      );
    return new HeraldError(
      ErrorCode.proxyInvalidAnswer,
      `proxy answer invalid: the app's ${kind} backend ${detail}; its operator must fix it (docs/proxy.md)`,
    );
  }

  private warn(kind: Kind, endpoint: ProxyEndpoint, conn: ProxyConnection, problem: string): void {
    this.opts.warn(
      { proxy: endpoint.name, kind, endpoint: endpoint.endpoint, client: conn.client, user: conn.user, problem },
      `${kind} proxy "${endpoint.name}" failed: ${problem}`,
    );
  }

  /** `data` or `b64data` (base64 of JSON text: Herald carries JSON only) as JSON text; undefined when neither. */
  private payload(value: unknown, b64: string | null | undefined, what: string): string | undefined {
    if (b64) {
      const text = Buffer.from(b64, 'base64').toString('utf8');
      try {
        JSON.parse(text);
      } catch {
        throw new ShapeError(`answered b64${what.replace(/^.*\./, '')} that is not base64 of JSON text (${what})`);
      }
      return text;
    }
    if (value === undefined || value === null) return undefined;
    return JSON.stringify(value);
  }

  private info(text: string, what: string): string {
    if (Buffer.byteLength(text, 'utf8') > this.opts.maxInfoBytes)
      throw new ShapeError(`answered ${what} larger than ${this.opts.maxInfoBytes} bytes (HERALD_MAX_INFO_SIZE)`);
    return text;
  }
}

function overrides(o: SubscribeOverride | undefined): Partial<Pick<NamespaceOptions, OverrideKey>> {
  const out: Partial<Pick<NamespaceOptions, OverrideKey>> = {};
  if (!o) return out;
  for (const k of overrideKeys) {
    const v = o[k];
    if (v) out[k] = v.value;
  }
  return out;
}

function disconnectInfo(code: number, reason: string): DisconnectInfo {
  return { code, reason };
}

/** A value Node can send as a header (no control characters). */
function validHeaderValue(v: string): boolean {
  return !/[\0-\x08\x0a-\x1f\x7f]/.test(v);
}
