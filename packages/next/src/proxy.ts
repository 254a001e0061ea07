/**
 * Typed route handlers for Herald's proxies (docs/proxy.md, "Proxies") in a Next.js App Router app. Herald POSTs a
 * JSON request to each configured endpoint and expects a JSON answer; the shapes are Centrifugo v6's, so the same
 * routes also serve Centrifugo.
 *
 *   // lib/herald-proxy.ts
 *   export const proxy = createProxyHandlers({
 *     async connect(req, { request }) {
 *       const session = await getServerSession(authOptions); // the Cookie header Herald forwarded
 *       if (!session?.user?.email) return { disconnect: { code: 4501, reason: 'sign in first' } };
 *       return { result: { user: session.user.email } };
 *     },
 *     publish: ({ data }) =>
 *       typeof data?.text === 'string' && data.text.trim() !== ''
 *         ? { result: {} }
 *         : { error: { code: 1400, message: 'empty message' } },
 *   }, { secret: process.env.HERALD_PROXY_SECRET });
 *
 *   // app/api/herald/connect/route.ts
 *   export const POST = proxy.connect;
 *
 * Web APIs only (Request, Response, Web Crypto), so the handlers run on the Node.js and the Edge runtimes.
 */

/** Fields of every proxy request. */
export interface ProxyRequestBase {
  /** The connection's id (unique per connection). */
  client: string;
  /** 'websocket', 'http_stream', 'sse', 'uni_sse', 'uni_http_stream' or 'uni_websocket'. */
  transport: string;
  protocol: 'json';
  encoding: 'json';
}

/** Fields of every request but connect: who the connection is. */
export interface ConnectedRequestBase extends ProxyRequestBase {
  /** The user the connection was authenticated as ('' for anonymous). */
  user: string;
  /** The `meta` the connect proxy returned, when the proxy has `include_connection_meta`. */
  meta?: unknown;
}

export interface ConnectRequest extends ProxyRequestBase {
  /** The SDK's `name` option. */
  name?: string;
  version?: string;
  /** The SDK's connect `data` option. */
  data?: unknown;
}
export type RefreshRequest = ConnectedRequestBase;
export interface SubscribeRequest extends ConnectedRequestBase {
  channel: string;
  /** The subscription's `data` option. */
  data?: unknown;
}
export interface PublishRequest extends ConnectedRequestBase {
  channel: string;
  /** What the client publishes. */
  data: unknown;
}
export interface SubRefreshRequest extends ConnectedRequestBase {
  channel: string;
}
export interface RpcRequest extends ConnectedRequestBase {
  /** The rpc method ('' or absent when the client sent none). */
  method?: string;
  data?: unknown;
}

/** An error the client receives as is; use codes 400-1999 (`temporary`: the SDK retries a subscribe). */
export interface ProxyError {
  code: number;
  message?: string;
  temporary?: boolean;
}

/** Closes the connection: 4000-4499 the SDK reconnects, 4500-4999 it does not; reason at most 123 bytes. */
export interface ProxyDisconnect {
  code: number;
  reason?: string;
}

/** Per-subscription overrides of the namespace's options. */
export interface SubscribeOverride {
  presence?: { value: boolean };
  join_leave?: { value: boolean };
  force_push_join_leave?: { value: boolean };
  force_positioning?: { value: boolean };
  force_recovery?: { value: boolean };
}

export interface ConnectResult {
  /** The user id; '' accepts the connection as anonymous. */
  user: string;
  /** Unix seconds when the connection expires (the refresh proxy is then asked); absent or 0: never. */
  expire_at?: number;
  /** Connection info shown in presence, join/leave and the connection's publications. */
  info?: unknown;
  /** Sent to the client in the connect reply (`connected` event's `data`). */
  data?: unknown;
  /** Server-side subscriptions. */
  channels?: string[];
  subs?: Record<string, { info?: unknown; data?: unknown; override?: SubscribeOverride }>;
  /** Kept by Herald for later proxy calls (include_connection_meta); never sent to the client. */
  meta?: unknown;
}
export interface RefreshResult {
  /** true closes the connection (3005, the SDK reconnects and the connect proxy decides again). */
  expired?: boolean;
  /** The new expiry in Unix seconds; absent or past with `expired` unset also expires the connection. */
  expire_at?: number;
  info?: unknown;
  meta?: unknown;
}
export interface SubscribeResult {
  /** This subscriber's channel info (presence, join/leave, its publications). */
  info?: unknown;
  /** Sent to the client in the subscribe reply (`subscribed` event's `data`). */
  data?: unknown;
  /** Unix seconds when the subscription expires (the sub_refresh proxy is then asked). */
  expire_at?: number;
  override?: SubscribeOverride;
}
export interface PublishResult {
  /** Replaces the client's data before it is stored and delivered. */
  data?: unknown;
  tags?: Record<string, string>;
  idempotency_key?: string;
}
export interface SubRefreshResult {
  /** true unsubscribes (2501: the SDK resubscribes and the subscribe proxy decides again). */
  expired?: boolean;
  expire_at?: number;
  info?: unknown;
}
export interface RpcResult {
  /** The rpc reply's data. */
  data?: unknown;
}

/** An answer: a result, an error for the client, or a disconnect. */
export type ProxyResponse<R> = { result: R } | { error: ProxyError } | { disconnect: ProxyDisconnect };
export type ConnectResponse = ProxyResponse<ConnectResult>;
export type SubscribeResponse = ProxyResponse<SubscribeResult>;
export type PublishResponse = ProxyResponse<PublishResult>;
export type RpcResponse = ProxyResponse<RpcResult>;
/** Refresh answers cannot refuse with an error or a disconnect: return `{ result: { expired: true } }`. */
export interface RefreshResponse {
  result: RefreshResult;
}
export interface SubRefreshResponse {
  result: SubRefreshResult;
}

/** What a handler gets besides the typed request: the route's Web Request (cookies, forwarded headers). */
export interface ProxyContext {
  request: Request;
}

type Handler<Q, A> = (req: Q, ctx: ProxyContext) => A | Promise<A>;

export interface ProxyHandlers {
  connect?: Handler<ConnectRequest, ConnectResponse>;
  refresh?: Handler<RefreshRequest, RefreshResponse>;
  subscribe?: Handler<SubscribeRequest, SubscribeResponse>;
  publish?: Handler<PublishRequest, PublishResponse>;
  sub_refresh?: Handler<SubRefreshRequest, SubRefreshResponse>;
  rpc?: Handler<RpcRequest, RpcResponse>;
}

export interface ProxyHandlersOptions {
  /**
   * A shared secret Herald sends with every call (set it in the proxy's `http.static_headers`); a request without it
   * is answered 401 and the handler is not called. Compared in constant time.
   */
  secret?: string;
  /** The header carrying `secret`. @default 'x-herald-proxy-secret' */
  secretHeader?: string;
}

/** An App Router route handler: `export const POST = proxy.connect`. */
export type ProxyRouteHandler = (request: Request) => Promise<Response>;

export type ProxyRoutes<H extends ProxyHandlers> = { [K in keyof H]-?: ProxyRouteHandler };

export const PROXY_SECRET_HEADER = 'x-herald-proxy-secret';

/** The client error `{ error: { code, message, temporary } }`. */
export function proxyError(code: number, message: string, temporary = false): { error: ProxyError } {
  return { error: temporary ? { code, message, temporary } : { code, message } };
}

/** The disconnect `{ disconnect: { code, reason } }` (4000-4499 reconnect, 4500-4999 terminal). */
export function proxyDisconnect(code: number, reason: string): { disconnect: ProxyDisconnect } {
  return { disconnect: { code, reason } };
}

const encoder = new TextEncoder();

/** Constant-time comparison of two strings (their UTF-8 bytes). */
function sameSecret(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * One route handler per given proxy. Each answers 405 to anything but POST, 401 without the shared secret (when
 * configured), 400 to a body that is not a proxy request, and the handler's answer as JSON otherwise. A handler that
 * throws gets a 500: Herald then gives the client its retryable error (150, or 3050 on connect) and logs a warning.
 */
export function createProxyHandlers<H extends ProxyHandlers>(
  handlers: H,
  options: ProxyHandlersOptions = {},
): ProxyRoutes<H> {
  const header = (options.secretHeader ?? PROXY_SECRET_HEADER).toLowerCase();
  const routes: Partial<Record<keyof ProxyHandlers, ProxyRouteHandler>> = {};
  for (const kind of Object.keys(handlers) as (keyof ProxyHandlers)[]) {
    const handler = handlers[kind] as Handler<unknown, unknown> | undefined;
    if (typeof handler !== 'function') continue;
    const needsUser = kind !== 'connect';
    const needsChannel = kind === 'subscribe' || kind === 'publish' || kind === 'sub_refresh';
    routes[kind] = async (request: Request): Promise<Response> => {
      if (request.method !== 'POST') return json({ error: 'method not allowed: Herald POSTs proxy requests' }, 405);
      if (options.secret !== undefined && !sameSecret(request.headers.get(header) ?? '', options.secret))
        return json({ error: `unauthorized: missing or wrong ${header}` }, 401);
      let body: unknown;
      try {
        body = await request.json();
      } catch {
        return json({ error: 'bad request: the body is not JSON' }, 400);
      }
      if (
        !isRecord(body) ||
        typeof body.client !== 'string' ||
        (needsUser && typeof body.user !== 'string') ||
        (needsChannel && typeof body.channel !== 'string')
      )
        return json({ error: `bad request: not a Herald ${kind} proxy request` }, 400);
      const answer = await handler(body, { request });
      return json(answer);
    };
  }
  return routes as ProxyRoutes<H>;
}
