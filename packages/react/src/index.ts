export { HeraldProvider, useHerald, useConnectionState, type HeraldProviderProps } from './context.js';
export {
  useSubscription,
  usePublications,
  usePresence,
  usePublish,
  type SubscriptionStatus,
  type PresenceMember,
} from './hooks.js';
export type { ConnectionState, HeraldClientOptions, PublicationContext, Diagnosis } from '@herald/client';
