/**
 * A map channel's options (`map: {...}` of a namespace with `subscription_type` "map" or "map_clients"), named as
 * in Centrifugo v6.8. docs/configuration.md#map-subscriptions.
 */
export interface MapNamespaceOptions {
  /**
   * 'ephemeral': keys expire after key_ttl, no change stream (a resubscribe gets the whole state again);
   * 'recoverable': keys expire after key_ttl and changes are kept in a stream (a resubscribe gets what it missed);
   * 'persistent': keys never expire, changes are kept in a stream. Required.
   */
  mode: 'ephemeral' | 'recoverable' | 'persistent';
  /** How long a key lives after its last publish, ms; its expiry is a removal every subscriber sees. Required for 'ephemeral' and 'recoverable', 0 for 'persistent'. */
  key_ttl_ms: number;
  /** Changes kept in the stream (recoverable and persistent). @default 100 */
  stream_size: number;
  /** How long a change stays in the stream, ms. @default 60 s */
  stream_ttl_ms: number;
  /** How long the stream's epoch and top offset outlive the last change, ms. @default persistent: 30 days; recoverable: stream_ttl × 10, at least key_ttl */
  meta_ttl_ms: number;
  /** 'client_id' or 'user_id': a client's publish and remove use that key whatever key it sent. @default '' (the key sent) */
  client_key: '' | 'client_id' | 'user_id';
  /** With client_key: the client's own key is removed when it unsubscribes or disconnects. @default false */
  remove_client_on_unsubscribe: boolean;
  allow_publish_for_client: boolean;
  allow_publish_for_subscriber: boolean;
  allow_publish_for_anonymous: boolean;
  allow_remove_for_client: boolean;
  allow_remove_for_subscriber: boolean;
  allow_remove_for_anonymous: boolean;
  /** Entries per state page when the client asks for none. @default 100 */
  default_page_size: number;
  /** A smaller page asked for is raised to this. @default 100 */
  min_page_size: number;
  /** A larger page asked for is lowered to this. @default 1000 */
  max_page_size: number;
  /** Most changes a subscriber may catch up on in its last subscribe step; more answers 112 (it starts over). @default max_page_size */
  live_transition_max_publication_limit: number;
}

/**
 * A shared poll channel's options (`shared_poll: {...}` of a namespace with `subscription_type` "shared_poll"), named
 * as in Centrifugo v6.8. docs/shared-poll.md.
 */
export interface SharedPollNamespaceOptions {
  /** A `proxies[]` entry called for the tracked keys' current data; '' uses channel.proxy.shared_poll_refresh. @default '' */
  proxy_name: string;
  /** How often the backend is asked for the tracked keys, ms. @default 10 s */
  refresh_interval_ms: number;
  /** Keys per backend call. @default 1000 */
  refresh_batch_size: number;
  /** Keys one connection may track in one channel; more is error 106. @default 5000 */
  max_keys_per_connection: number;
  /**
   * 'versionless': the backend answers data, Herald numbers each change (versions valid on this node, with an epoch);
   * 'versioned': the backend answers data with a version that grows on every change. @default 'versionless'
   */
  mode: 'versionless' | 'versioned';
  /** How long a channel's keys and versions outlive its last subscriber, ms. @default 1 s */
  channel_shutdown_delay_ms: number;
  /** How long a key stays tracked after its signature expired without a new track, ms. @default 25 s */
  track_expired_extra_delay_ms: number;
}

export const MAP_DEFAULT_PAGE_SIZE = 100;
export const MAP_MIN_PAGE_SIZE = 100;
export const MAP_MAX_PAGE_SIZE = 1000;

/** Per-namespace channel options, named as in Centrifugo v6 (`channel.without_namespace`, `channel.namespaces[]`). */
export interface NamespaceOptions {
  /**
   * 'stream': publications with history (the default); 'map': keyed state a subscriber receives whole and then as
   * changes; 'map_clients': a map of the clients subscribed to a channel (map presence, server-written);
   * 'shared_poll': keys a client tracks, whose data Herald polls from the app's backend (docs/shared-poll.md).
   * @default 'stream'
   */
  subscription_type: 'stream' | 'map' | 'map_clients' | 'shared_poll';
  /** The map options; set exactly when subscription_type is 'map' or 'map_clients'. @default null */
  map: MapNamespaceOptions | null;
  /** The shared poll options; set exactly when subscription_type is 'shared_poll'. @default null */
  shared_poll: SharedPollNamespaceOptions | null;
  /** A subscriber of a channel here is listed (key: its client ID) in the map_clients channel `<prefix><channel>`. @default '' (none) */
  map_clients_presence_channel_prefix: string;
  /** Subscribers may send a tags filter (`tf`) and receive only the entries and changes whose tags match. @default false */
  allow_tags_filter: boolean;
  /** Told to map subscribers (`publish_debounce`, ms): the SDK sends at most one publish per key per interval. @default 0 */
  client_publish_debounce_interval_ms: number;
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
  subscription_type: 'stream',
  map: null,
  shared_poll: null,
  map_clients_presence_channel_prefix: '',
  allow_tags_filter: false,
  client_publish_debounce_interval_ms: 0,
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
