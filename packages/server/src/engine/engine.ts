import type { Broker } from './broker.js';
import type { History } from './history.js';
import type { LifecycleStore } from './lifecycle.js';
import type { MapBroker } from './map-broker.js';
import type { PresenceManager } from './presence.js';

/** What the node does on top of an engine's roles depends on these, never on the engine's name. */
export interface EngineCapabilities {
  /**
   * Several Herald nodes share this engine's broker, history and presence (Redis: every node with the same prefix).
   * When true the node announces itself on the control channel every 5 s (the `info` API's node list, `channels`
   * across nodes), forgets nodes silent for 30 s, and refreshes its clients' presence entries within
   * HERALD_PRESENCE_TTL (a killed node's clients vanish). When false (one process: the memory engine) it does none
   * of that work.
   */
  readonly shared: boolean;
}

/** Capabilities of an engine that declares none: shared, the behaviour that is correct for any engine. */
export const DEFAULT_ENGINE_CAPABILITIES: EngineCapabilities = Object.freeze({ shared: true });

/**
 * The three roles one backend provides. `memory` is the single-node default; `redis` scales out.
 * A custom engine declares `capabilities`; without them it is treated as shared (`{ shared: true }`), which costs a
 * heartbeat every 5 s and presence refreshes but is never wrong: declare `{ shared: false }` for a one-process engine.
 */
export interface Engine {
  /** For logs and GET /ready's reasons only: behaviour follows `capabilities`. */
  readonly name: string;
  /** @default { shared: true } (DEFAULT_ENGINE_CAPABILITIES) */
  readonly capabilities?: EngineCapabilities;
  readonly broker: Broker;
  readonly history: History;
  readonly presence: PresenceManager;
  /**
   * Keyed state of map channels (map-broker.ts). An engine without it answers map subscriptions and map publishes
   * with 108 (not available).
   */
  readonly map?: MapBroker;
  /**
   * Shared engines: who holds which channel and presence, so that occupied/vacated and presence webhook events are
   * sent once across nodes (lifecycle.ts). Without it a shared engine's nodes each send their own transitions.
   */
  readonly lifecycle?: LifecycleStore;
  /** True when the engine can serve (store reachable); drives GET /ready. */
  isReady(): boolean;
  /** Why it is not ready, for GET /ready's checks (when isReady() is false). */
  notReadyReason?(): string;
  close(): Promise<void>;
}

/** The capabilities `engine` declares, or the default (shared) when it declares none. */
export function engineCapabilities(engine: Engine): EngineCapabilities {
  return engine.capabilities ?? DEFAULT_ENGINE_CAPABILITIES;
}
