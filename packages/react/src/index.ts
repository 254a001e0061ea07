export { HeraldProvider, useHerald, useConnectionState, type HeraldProviderProps } from './context.js';
export {
  useChannel,
  useSubscription,
  usePublications,
  usePresence,
  usePublish,
  type SubscriptionStatus,
  type ChannelState,
  type PresenceMember,
} from './hooks.js';
export { HeraldClientError } from '@herald/client';
export type { ConnectionState, HeraldClientOptions, PublicationContext, Diagnosis } from '@herald/client';
