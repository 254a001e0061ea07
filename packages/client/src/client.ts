import {
  Centrifuge,
  UnauthorizedError,
  type HistoryOptions,
  type HistoryResult,
  type Options,
  type PresenceResult,
  type PublicationContext,
  type Subscription,
  type SubscriptionErrorContext,
  type SubscriptionOptions,
  type SubscriptionStateContext,
  type UnsubscribedContext,
} from 'centrifuge';
import {
  diagnoseConnectError,
  diagnoseExpiredAgain,
  diagnoseServerClose,
  diagnoseTokenRoute,
  diagnoseTransportFailure,
  withDoctorHint,
  type Diagnosis,
  type DiagnosisContext,
} from './diagnose.js';
import { resolveEndpoint, type ResolvedEndpoint } from './endpoint.js';
import { readBodyHead } from './body.js';
import { probeEndpoint } from './probe.js';
import { HeraldClientError, refusalLine, refusalOf, type HeraldOperation } from './refusal.js';

/** The most of a failed token route answer read for its `message` (the route is the app's, but may be anything). */
const TOKEN_ROUTE_ERROR_MAX_BYTES = 16 * 1024;

/** The `message` of a JSON error answer such as `createTokenRoute`'s `{ error, code, message }`, else ''. */
async function routeErrorMessage(res: Response): Promise<string> {
  try {
    const body = JSON.parse(await readBodyHead(res, TOKEN_ROUTE_ERROR_MAX_BYTES)) as {
      message?: unknown;
      code?: unknown;
    };
    if (typeof body?.message !== 'string') return '';
    const code = typeof body.code === 'string' ? `${body.code}: ` : '';
    return `${code}${body.message}`.slice(0, 1000);
  } catch {
    return '';
  }
}

export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

export interface HeraldClientOptions {
  /** Herald's WebSocket URL (ws:, wss:, http(s): or a path). @default NEXT_PUBLIC_HERALD_URL, else same-origin /ws */
  url?: string;
  /** Path for the same-origin rule. @default '/ws' */
  path?: string;
  /**
   * The app route that returns `{ token }` for the signed-in user; fetched on connect and again whenever Herald says
   * the token expired. Relative URLs resolve against the page. `false` turns it off. @default '/api/herald/token' in a
   * browser, none in Node
   */
  tokenUrl?: string | false;
  /** Your own token source (wins over tokenUrl). Throw `UnauthorizedError` to stop reconnecting. */
  getToken?: () => Promise<string>;
  /** A fixed initial token. */
  token?: string;
  /** WebSocket constructor. @default globalThis.WebSocket (Node 20: pass `WebSocket` from 'ws') */
  websocket?: unknown;
  /**
   * Milliseconds to wait for the upgrade and for each reply. An upgrade to a path Next.js has no rewrite for hangs
   * forever, so this is what ends it. @default 5000
   */
  connectTimeout?: number;
  /** Milliseconds for the diagnostic GET. @default 3000 */
  probeTimeout?: number;
  /**
   * What to do with a diagnosis: `true` prints it with console.error, once per cause; a function receives each
   * one (also once per cause); `false` does nothing. @default true
   */
  diagnose?: boolean | ((d: Diagnosis) => void);
  /** Any other centrifuge SDK option (reconnect delays, debug, name, ...). */
  centrifuge?: Partial<Options>;
}

type Listener<T> = (value: T) => void;

/** Subscriptions shared by every hook and caller that asks for the same channel; released by reference count. */
interface SharedSub {
  sub: Subscription;
  refs: number;
  /** Why the subscription is not (or no longer) subscribed, until it subscribes again. */
  error: HeraldClientError | undefined;
  errorListeners: Set<Listener<HeraldClientError | undefined>>;
  /** Stops watching the subscription's events (on the last release). */
  unwatch: () => void;
}

/** One holder's share of a channel's subscription (see HeraldClient.retain). */
export interface RetainedSubscription {
  sub: Subscription;
  /** Gives the share back; the last release unsubscribes. */
  release: () => void;
  /**
   * Why Herald refused or ended the subscription (102 unknown channel, 103 permission denied, 109 token expired
   * again, 2000 server unsubscribe, ...); undefined while all is well. Cleared when it subscribes again.
   */
  error: () => HeraldClientError | undefined;
  /** Listens to changes of `error()`; returns the function that stops listening. */
  onError: (fn: (error: HeraldClientError | undefined) => void) => () => void;
}

export class HeraldClient {
  readonly endpoint: ResolvedEndpoint;
  readonly centrifuge: Centrifuge;
  private stateValue: ConnectionState = 'disconnected';
  private readonly stateListeners = new Set<Listener<ConnectionState>>();
  private readonly diagnosisListeners = new Set<Listener<Diagnosis>>();
  private readonly reported = new Set<string>();
  private readonly subs = new Map<string, SharedSub>();
  private readonly ctx: DiagnosisContext;
  private readonly report: ((d: Diagnosis) => void) | undefined;
  private readonly probeTimeout: number;
  private probedThisStreak = false;
  private lastUpgradeStatus: number | undefined;
  private expiredInARow = 0;

  constructor(options: HeraldClientOptions = {}) {
    this.endpoint = resolveEndpoint({ url: options.url, ...(options.path ? { path: options.path } : {}) });
    const connectTimeout = options.connectTimeout ?? 5000;
    this.probeTimeout = options.probeTimeout ?? 3000;
    const loc = (globalThis as { location?: { origin?: string } }).location;
    this.ctx = {
      endpoint: this.endpoint,
      pageOrigin: typeof loc?.origin === 'string' && loc.origin !== 'null' ? loc.origin : undefined,
      connectTimeoutMs: connectTimeout,
    };
    const d = options.diagnose ?? true;
    this.report = d === false ? undefined : d === true ? (x) => console.error(x.message) : d;

    const Base = (options.websocket ?? (globalThis as { WebSocket?: unknown }).WebSocket) as WebSocketCtor | undefined;
    if (typeof Base !== 'function') {
      throw new TypeError(
        "@herald/client: no WebSocket here (Node 20): pass { websocket: WebSocket } from the 'ws' package",
      );
    }
    const sdkOptions: Partial<Options> = {
      timeout: connectTimeout,
      ...options.centrifuge,
      websocket: this.observe(Base),
    };
    if (options.token !== undefined) sdkOptions.token = options.token;
    const getToken = options.getToken ?? this.tokenRoute(options.tokenUrl);
    if (getToken) sdkOptions.getToken = getToken;
    this.centrifuge = new Centrifuge(this.endpoint.url, sdkOptions);
    this.wire();
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  connect(): void {
    this.centrifuge.connect();
  }

  disconnect(): void {
    this.centrifuge.disconnect();
  }

  /** Listens to connection state changes; returns the function that stops listening. */
  onState(fn: Listener<ConnectionState>): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  /** Listens to diagnoses (each cause once); returns the function that stops listening. */
  onDiagnosis(fn: Listener<Diagnosis>): () => void {
    this.diagnosisListeners.add(fn);
    return () => this.diagnosisListeners.delete(fn);
  }

  /**
   * The shared subscription to a channel, subscribed on first use; call the returned release when done (the last
   * release unsubscribes). Recovery is the SDK's: publications missed while disconnected arrive in order.
   */
  retain(channel: string, options: Partial<SubscriptionOptions> = {}): RetainedSubscription {
    let shared = this.subs.get(channel);
    if (!shared) {
      const sub =
        this.centrifuge.getSubscription(channel) ??
        this.centrifuge.newSubscription(channel, { joinLeave: true, ...options });
      const entry: SharedSub = { sub, refs: 0, error: undefined, errorListeners: new Set(), unwatch: () => {} };
      entry.unwatch = this.watch(channel, entry);
      shared = entry;
      this.subs.set(channel, shared);
      sub.subscribe();
    }
    shared.refs++;
    const entry = shared;
    let released = false;
    return {
      sub: entry.sub,
      release: () => {
        if (released) return;
        released = true;
        entry.refs--;
        if (entry.refs === 0 && this.subs.get(channel) === entry) {
          this.subs.delete(channel);
          entry.unwatch();
          entry.errorListeners.clear();
          entry.sub.unsubscribe();
          this.centrifuge.removeSubscription(entry.sub);
        }
      },
      error: () => entry.error,
      onError: (fn) => {
        entry.errorListeners.add(fn);
        return () => entry.errorListeners.delete(fn);
      },
    };
  }

  /** Why Herald refused or ended the shared subscription to `channel` (see retain), if it did. */
  subscriptionError(channel: string): HeraldClientError | undefined {
    return this.subs.get(channel)?.error;
  }

  /** Subscribes and calls `onPublication` for each publication; returns the unsubscribe function. */
  subscribe(channel: string, onPublication: (ctx: PublicationContext) => void): () => void {
    const { sub, release } = this.retain(channel);
    sub.on('publication', onPublication);
    return () => {
      sub.off('publication', onPublication);
      release();
    };
  }

  /**
   * Publishes as this client (the namespace must allow it); waits for the connection. A refusal rejects with a
   * `HeraldClientError` (code, the server's reason, fix) and prints one console line per channel and code.
   */
  async publish(channel: string, data: unknown): Promise<void> {
    try {
      await this.centrifuge.publish(channel, data);
    } catch (err) {
      throw this.refused('publish', channel, err);
    }
  }

  /** Who is subscribed to `channel` (the namespace needs presence); a refusal rejects like publish. */
  async presence(channel: string): Promise<PresenceResult> {
    try {
      return await this.centrifuge.presence(channel);
    } catch (err) {
      throw this.refused('presence', channel, err);
    }
  }

  /** The channel's history (the namespace needs history_size and history_ttl); a refusal rejects like publish. */
  async history(channel: string, options?: HistoryOptions): Promise<HistoryResult> {
    try {
      return await this.centrifuge.history(channel, options);
    } catch (err) {
      throw this.refused('history', channel, err);
    }
  }

  /**
   * The typed error for a failed operation; a reply from Herald (code >= 100) or a server unsubscribe (2000) is
   * also reported (one console line per cause, channel and code). The SDK's own failures (timeout, not connected)
   * are not: the connection's diagnosis covers them.
   */
  private refused(operation: HeraldOperation, channel: string, err: unknown): HeraldClientError {
    const e = refusalOf(operation, channel, err, this.endpoint.url);
    if (e.code >= 100) {
      this.emitDiagnosis({
        cause: e.code === 2000 ? 'unsubscribed_by_server' : `${operation}_refused`,
        code: e.code,
        channel,
        fix: e.fix,
        message: refusalLine(e),
      });
    }
    return e;
  }

  /** Turns a subscription's refusals into its error state and console lines; returns the function that stops. */
  private watch(channel: string, entry: SharedSub): () => void {
    const sub = entry.sub;
    let from = sub.state as string;
    let expiredInARow = 0;
    const set = (error: HeraldClientError | undefined) => {
      if (error === entry.error) return;
      entry.error = error;
      for (const fn of entry.errorListeners) fn(error);
    };
    const onState = (ctx: SubscriptionStateContext) => {
      from = ctx.oldState;
    };
    const onSubscribed = () => {
      expiredInARow = 0;
      set(undefined);
    };
    const onUnsubscribed = ({ code, reason }: UnsubscribedContext) => {
      const operation = from === 'subscribed' ? 'refresh' : 'subscribe';
      // 0: unsubscribe() called, 2: the client closed; neither is a refusal.
      if (code === 0 || code === 2) return;
      if (code === 1) {
        // Unauthorized: a 109 with no getToken (its configuration error came first and set the state), or the
        // subscription's getToken threw UnauthorizedError / returned ''.
        if (entry.error?.code === 109) return;
        set(
          new HeraldClientError({
            operation,
            channel,
            code,
            reason: reason || 'unauthorized',
            fix: `the subscription's getToken threw UnauthorizedError (or returned no token): this user may not subscribe to ${channel}`,
          }),
        );
        return;
      }
      set(this.refused(operation, channel, { code, message: reason }));
    };
    const onError = (ctx: SubscriptionErrorContext) => {
      const { type, error } = ctx;
      if (type === 'subscribe' || type === 'refresh') {
        const operation = type === 'refresh' ? 'refresh' : 'subscribe';
        // One expiry is routine (the SDK asks getToken again); a second in a row means the new token was stale too.
        if (error.code === 109 && ++expiredInARow < 2) return;
        if (error.code >= 100) set(this.refused(operation, channel, { ...error, temporary: true }));
      } else if (type === 'configuration' && /token expired/.test(error.message)) {
        set(
          this.refused('subscribe', channel, {
            code: 109,
            message: `token expired, and the subscription has a fixed token and no getToken to ask for a new one`,
          }),
        );
      } else if (type === 'subscribeToken') {
        const reason = error.message;
        const e = new HeraldClientError({
          operation: 'subscribe',
          channel,
          code: error.code,
          reason,
          temporary: true,
          fix: `the subscription's getToken failed (${reason}); the client retries with backoff. Throw UnauthorizedError from it to stop`,
        });
        this.emitDiagnosis({
          cause: 'subscription_token_source',
          code: e.code,
          channel,
          fix: e.fix,
          message: refusalLine(e),
        });
        set(e);
      }
    };
    sub.on('state', onState);
    sub.on('subscribed', onSubscribed);
    sub.on('unsubscribed', onUnsubscribed);
    sub.on('error', onError);
    return () => {
      sub.off('state', onState);
      sub.off('subscribed', onSubscribed);
      sub.off('unsubscribed', onUnsubscribed);
      sub.off('error', onError);
    };
  }

  private setState(next: ConnectionState): void {
    if (next === this.stateValue) return;
    this.stateValue = next;
    for (const fn of this.stateListeners) fn(next);
  }

  private emitDiagnosis(d: Diagnosis): void {
    // Once per cause (and channel and code for a channel's refusal): a reconnect or resubscribe loop must not print
    // the same advice every few seconds.
    const key = d.channel === undefined ? d.cause : `${d.cause}|${d.channel}|${d.code ?? ''}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    // A channel's refusal is one line with its own fix; the connection's failures get the doctor command.
    if (d.channel === undefined) d = withDoctorHint(d, this.ctx);
    this.report?.(d);
    for (const fn of this.diagnosisListeners) fn(d);
  }

  private wire(): void {
    const c = this.centrifuge;
    c.on('state', ({ newState, oldState }) => {
      if (newState === 'connected') {
        this.probedThisStreak = false;
        this.expiredInARow = 0;
        this.setState('connected');
      } else if (newState === 'disconnected') {
        this.setState('disconnected');
      } else if (oldState === 'connected') {
        // Lost and retrying: the UI shows that it is not connected now.
        this.setState('disconnected');
      } else {
        // connect() called: a new streak of attempts, which may be probed again.
        this.probedThisStreak = false;
        this.setState('connecting');
      }
    });
    c.on('error', (e) => {
      if (e.type === 'transport') {
        // Failed before the socket opened (refused, timed out, answered without 101).
        this.setState('disconnected');
        if (!this.probedThisStreak && this.report !== undefined) {
          this.probedThisStreak = true;
          const failure = { reason: e.error.message, httpStatus: this.lastUpgradeStatus };
          probeEndpoint(this.endpoint.url, { timeoutMs: this.probeTimeout }).then(
            (probe) => this.emitDiagnosis(diagnoseTransportFailure(this.ctx, failure, probe)),
            () => {
              /* the probe answers every failure with a result; nothing to diagnose if it still threw */
            },
          );
        }
      } else if (e.type === 'connect') {
        if (e.error.code === 109) {
          // One expiry is routine (the SDK fetches a new token); a second in a row means the new one was stale too.
          if (++this.expiredInARow >= 2) this.emitDiagnosis(diagnoseExpiredAgain(this.ctx, e.error.message));
          return;
        }
        const d = diagnoseConnectError(this.ctx, e.error.code, e.error.message);
        if (d) this.emitDiagnosis(d);
      }
    });
    c.on('disconnected', ({ code, reason }) => {
      const d = diagnoseServerClose(this.ctx, code, reason);
      if (d) this.emitDiagnosis(d);
    });
  }

  /** Wraps the WebSocket class to learn, where the implementation tells it, the HTTP status of a refused upgrade. */
  private observe(Base: WebSocketCtor): WebSocketCtor {
    const self = this;
    return class ObservedWebSocket extends Base {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        self.lastUpgradeStatus = undefined;
        this.addEventListener('error', (ev: unknown) => {
          // Node's ws: "Unexpected server response: 403". Browsers give no detail at all.
          const msg = (ev as { message?: unknown }).message;
          const m = typeof msg === 'string' ? /Unexpected server response: (\d{3})/.exec(msg) : null;
          if (m) self.lastUpgradeStatus = Number(m[1]);
        });
      }
    };
  }

  private tokenRoute(tokenUrl: string | false | undefined): (() => Promise<string>) | undefined {
    if (tokenUrl === false) return undefined;
    const loc = (globalThis as { location?: { href?: string } }).location;
    const raw = tokenUrl ?? (loc?.href ? '/api/herald/token' : undefined);
    if (raw === undefined) return undefined;
    const url = loc?.href ? new URL(raw, loc.href).toString() : raw;
    return async () => {
      let res: Response;
      try {
        res = await fetch(url, {
          credentials: 'same-origin',
          cache: 'no-store',
          headers: { accept: 'application/json' },
        });
      } catch (err) {
        this.emitDiagnosis(diagnoseTokenRoute(url, undefined, err instanceof Error ? err.message : String(err)));
        throw err;
      }
      if (res.status === 401 || res.status === 403) {
        this.emitDiagnosis(diagnoseTokenRoute(url, res.status, ''));
        throw new UnauthorizedError(`token route answered ${res.status}`);
      }
      if (!res.ok) {
        this.emitDiagnosis(diagnoseTokenRoute(url, res.status, await routeErrorMessage(res)));
        throw new Error(`token route ${url} answered ${res.status}`);
      }
      const body = (await res.json().catch(() => null)) as { token?: unknown } | null;
      if (!body || typeof body.token !== 'string' || body.token === '') {
        this.emitDiagnosis(diagnoseTokenRoute(url, res.status, 'the answer has no "token" string'));
        throw new Error(`token route ${url} answered without a token`);
      }
      return body.token;
    };
  }
}

type WebSocketCtor = new (
  url: string,
  protocols?: string | string[],
) => {
  addEventListener(type: string, listener: (ev: unknown) => void): void;
};

export function createHeraldClient(options: HeraldClientOptions = {}): HeraldClient {
  return new HeraldClient(options);
}
