export { createHerald, type Herald, type HeraldOptions } from './herald.js';
export type { HeraldCore, PublishCallOptions, PublishSource, ApiLimits } from './core.js';
export type * from './hooks.js';
export { loadConfig, ConfigError, type HeraldConfig, type NamespaceOptions } from './config/index.js';
export { HeraldError, ErrorCode, Disconnect, UnsubscribeCode } from './protocol/codes.js';
export { DEFAULT_ENGINE_CAPABILITIES, type Engine, type EngineCapabilities } from './engine/engine.js';
export type { Broker, BrokerEventHandler, ControlMessage, PublishOptions, NodeInfo } from './engine/broker.js';
export type { History, HistoryQuery, HistoryResult } from './engine/history.js';
export type { PresenceManager, PresenceStats } from './engine/presence.js';
export type { ClientInfo, Publication, PublicationInput, StreamPosition } from './engine/types.js';
export { createMemoryEngine } from './engine/memory/index.js';
export { HERALD_VERSION } from './version.js';
export {
  createOutboxConsumer,
  migrateOutbox,
  type OutboxConsumer,
  type OutboxConsumerOptions,
  type OutboxStore,
} from './outbox/consumer.js';
export {
  decodeNextAuthSession,
  inspectNextAuthSession,
  type NextAuthSession,
  type NextAuthSessionResult,
} from './auth/index.js';
export { signSharedPollKeys } from './shared-poll/signature.js';
