/** Per-namespace channel options, named as in Centrifugo v6 (`channel.without_namespace`, `channel.namespaces[]`). */
export interface NamespaceOptions {
  /** Track who is subscribed. @default false */
  presence: boolean;
  /** Send join/leave pushes to subscribers that ask for them. @default false */
  join_leave: boolean;
  /** Send join/leave pushes to every subscriber. @default false */
  force_push_join_leave: boolean;
  /** Publications kept per channel; 0 disables history and recovery. @default 0 */
  history_size: number;
  /** How long publications stay in history, ms (config: "300s"). @default 0 */
  history_ttl_ms: number;
  /** How long the stream's epoch and top offset outlive the last publication, ms. @default 30 days */
  history_meta_ttl_ms: number;
  /** Answer subscribe with `recoverable: true` and recover every resubscribe. @default false */
  force_recovery: boolean;
  /** Let clients ask for recovery. @default false */
  allow_recovery: boolean;
  /**
   * How a recovering subscribe is answered: 'stream' replays every missed publication; 'cache' answers only the
   * channel's latest publication (the current value of a ticker or a document), also for a first subscribe that asks
   * for recovery (the SDK's `since: {}`). @default 'stream'
   */
  force_recovery_mode: 'stream' | 'cache';
  /** With force_recovery_mode 'cache': every subscribe, server-side ones too, gets the latest publication without asking. @default false */
  auto_cache_recover: boolean;
  /** Send offsets and epoch with every subscribe (positioning). @default false */
  force_positioning: boolean;
  allow_positioning: boolean;
  /** Any authenticated connection may subscribe without a subscription token. @default false */
  allow_subscribe_for_client: boolean;
  /** Anonymous connections may subscribe without a token (needs allow_subscribe_for_client too). @default false */
  allow_subscribe_for_anonymous: boolean;
  allow_publish_for_subscriber: boolean;
  allow_publish_for_client: boolean;
  allow_publish_for_anonymous: boolean;
  allow_history_for_subscriber: boolean;
  allow_history_for_client: boolean;
  allow_history_for_anonymous: boolean;
  allow_presence_for_subscriber: boolean;
  allow_presence_for_client: boolean;
  allow_presence_for_anonymous: boolean;
  /** Channels like `chat#42,43` may be joined only by users 42 and 43. @default false */
  allow_user_limited_channels: boolean;
  /** Delta encodings subscribers may ask for (`delta: "fossil"` in subscribe); only "fossil" exists. @default [] */
  allowed_delta_types: string[];
  /** Send each publication as a fossil delta against the previous one to subscribers that negotiated it. @default false */
  delta_publish: boolean;
  /** Subscribe without a token asks the subscribe proxy (docs/proxy.md) instead of the allow_subscribe_* options. @default false */
  subscribe_proxy_enabled: boolean;
  /** Publish asks the publish proxy instead of the allow_publish_* options; it may refuse or replace the data. @default false */
  publish_proxy_enabled: boolean;
  /** An expiring subscription is refreshed by Herald through the sub_refresh proxy, not by the client. @default false */
  sub_refresh_proxy_enabled: boolean;
  /** A `proxies[]` entry for this namespace's subscribe proxy; '' uses channel.proxy.subscribe. @default '' */
  subscribe_proxy_name: string;
  /** A `proxies[]` entry for the publish proxy; '' uses channel.proxy.publish. @default '' */
  publish_proxy_name: string;
  /** A `proxies[]` entry for the sub_refresh proxy; '' uses channel.proxy.sub_refresh. @default '' */
  sub_refresh_proxy_name: string;
}

export const defaultNamespaceOptions: NamespaceOptions = {
  presence: false,
  join_leave: false,
  force_push_join_leave: false,
  history_size: 0,
  history_ttl_ms: 0,
  history_meta_ttl_ms: 30 * 24 * 3600 * 1000,
  force_recovery: false,
  allow_recovery: false,
  force_recovery_mode: 'stream',
  auto_cache_recover: false,
  force_positioning: false,
  allow_positioning: false,
  allow_subscribe_for_client: false,
  allow_subscribe_for_anonymous: false,
  allow_publish_for_subscriber: false,
  allow_publish_for_client: false,
  allow_publish_for_anonymous: false,
  allow_history_for_subscriber: false,
  allow_history_for_client: false,
  allow_history_for_anonymous: false,
  allow_presence_for_subscriber: false,
  allow_presence_for_client: false,
  allow_presence_for_anonymous: false,
  allow_user_limited_channels: false,
  allowed_delta_types: [],
  delta_publish: false,
  subscribe_proxy_enabled: false,
  publish_proxy_enabled: false,
  sub_refresh_proxy_enabled: false,
  subscribe_proxy_name: '',
  publish_proxy_name: '',
  sub_refresh_proxy_name: '',
};

/** The namespace options that name a `proxies[]` entry. */
export const proxyNameNamespaceKeys = ['subscribe_proxy_name', 'publish_proxy_name', 'sub_refresh_proxy_name'] as const;

export const booleanNamespaceKeys = Object.keys(defaultNamespaceOptions).filter(
  (k) => typeof defaultNamespaceOptions[k as keyof NamespaceOptions] === 'boolean',
) as (keyof NamespaceOptions)[];
