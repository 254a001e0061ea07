import type { UpgradeRequestInfo } from './transport/connection.js';

/**
 * Hooks for applications that embed Herald (createHerald({ hooks })). Each may be async. To refuse, throw a
 * HeraldError (its code becomes the error reply) or, in onConnecting, return `{ disconnect }`.
 */
export interface HeraldHooks {
  /**
   * Called for every connect command before token checks end. Return credentials to authenticate the
   * connection yourself (e.g. from the app's session cookie in `request.headers.cookie`); return undefined to
   * fall back to the token in the command.
   */
  onConnecting?(
    ctx: ConnectingContext,
  ): Promise<ConnectingResult | undefined | void> | ConnectingResult | undefined | void;
  /** After a connection is accepted. */
  onConnect?(ctx: ClientContext): void;
  /** Before a client subscription is accepted (after permission checks); throw to refuse. */
  onSubscribe?(
    ctx: SubscribeContext,
  ): Promise<SubscribeHookResult | undefined | void> | SubscribeHookResult | undefined | void;
  /** Before a client publication is stored; throw to refuse; may replace `data`. */
  onPublish?(
    ctx: PublishContext,
  ): Promise<{ data?: unknown } | undefined | void> | { data?: unknown } | undefined | void;
  /** Handles an `rpc` command; without it rpc answers 108 (not available). */
  onRpc?(ctx: RpcContext): Promise<unknown> | unknown;
  /** Handles an asynchronous `send` message (no reply). */
  onMessage?(ctx: MessageContext): void | Promise<void>;
  /** After a client subscription became active (client or server-side), once its subscribe reply was sent. */
  onSubscribed?(ctx: SubscribedContext): void;
  /** After a client subscription ends, whatever the cause (client, server API, disconnect). */
  onUnsubscribe?(ctx: UnsubscribeContext): void;
  /** After a connection ends, with its close code and reason. */
  onDisconnect?(ctx: DisconnectContext): void;
}

export interface ClientContext {
  client: string;
  user: string;
  transport: UpgradeRequestInfo;
}

export interface ConnectingContext {
  client: string;
  transport: UpgradeRequestInfo;
  token?: string;
  data?: unknown;
  name?: string;
  version?: string;
  headers?: Record<string, string>;
}

export interface ConnectingResult {
  /** The user id ('' for anonymous). */
  user?: string;
  /** Seconds since epoch; the SDK refreshes before it. */
  expireAt?: number;
  info?: unknown;
  /** Server-side subscriptions. */
  channels?: string[];
  /** Sent back in the connect reply's `data`. */
  data?: unknown;
  /** Refuse the connection with this close code (3500-3999 / 4500-4999 terminal, 3000-3499 / 4000-4499 reconnect). */
  disconnect?: { code: number; reason: string };
}

export interface SubscribeContext extends ClientContext {
  channel: string;
  data?: unknown;
  token?: string;
}

export interface SubscribeHookResult {
  /** Channel info attached to this subscriber's publications and presence (`chan_info`). */
  info?: unknown;
  /** Sent in the subscribe reply's `data`. */
  data?: unknown;
}

export interface PublishContext extends ClientContext {
  channel: string;
  data: unknown;
}

export interface RpcContext extends ClientContext {
  method: string;
  data: unknown;
}

export interface MessageContext extends ClientContext {
  data: unknown;
}

export interface SubscribedContext extends ClientContext {
  channel: string;
}

export interface UnsubscribeContext extends ClientContext {
  channel: string;
  /** 'client', 'server' (API or hook), 'disconnect', 'insufficient_state', 'expired'. */
  reason: string;
  /**
   * 0 (UnsubscribeCode.client) when the client unsubscribed, the unsubscribe push's code when the server ended it
   * (2000, 2500, 2501), the connection's close code when it ended with the connection (docs/codes.md).
   */
  code: number;
}

export interface DisconnectContext extends ClientContext {
  code: number;
  reason: string;
}
