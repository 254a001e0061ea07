import type { Broker } from './broker.js';
import type { History } from './history.js';
import type { PresenceManager } from './presence.js';

/** The three roles one backend provides. `memory` is the single-node default; `redis` scales out. */
export interface Engine {
  readonly name: string;
  readonly broker: Broker;
  readonly history: History;
  readonly presence: PresenceManager;
  /** True when the engine can serve (store reachable); drives GET /ready. */
  isReady(): boolean;
  /** Why it is not ready, for GET /ready's checks (when isReady() is false). */
  notReadyReason?(): string;
  close(): Promise<void>;
}
