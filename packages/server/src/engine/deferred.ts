import type { Broker } from './broker.js';
import type { Engine, EngineCapabilities } from './engine.js';
import type { History } from './history.js';
import type { LifecycleStore } from './lifecycle.js';
import type { MapBroker } from './map-broker.js';
import type { PresenceManager } from './presence.js';

/**
 * An engine whose implementation is still loading (a dynamic import, so that its libraries, e.g. ioredis, load only
 * when the engine is used). Calls made before it is loaded wait for it; once loaded, every call goes straight to it.
 * A failed load fails every call with the load's error and keeps /ready at 503 with the reason.
 */
export function deferredEngine(opts: {
  name: string;
  capabilities: EngineCapabilities;
  /** The loaded engine has a `lifecycle` store. */
  lifecycle?: boolean;
  /** The loaded engine has a map broker (`map`). */
  map?: boolean;
  load: () => Promise<Engine>;
}): Engine {
  let inner: Engine | undefined;
  let failure: Error | undefined;
  const loading = opts.load().then(
    (engine) => (inner = engine),
    (err: unknown) => {
      failure = new Error(
        `the ${opts.name} engine failed to load: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
      throw failure;
    },
  );
  // Not lost: every call below (broker.run first, which listen() awaits) rejects with it, and /ready names it.
  loading.catch(() => {});

  /** `use(engine)` on the loaded engine: directly once loaded, after the load before. */
  function via<T>(use: (engine: Engine) => Promise<T>): Promise<T> {
    return inner ? use(inner) : loading.then(use);
  }

  const broker: Broker = {
    run: (handler) => via((e) => e.broker.run(handler)),
    publish: (channel, pub, options) => via((e) => e.broker.publish(channel, pub, options)),
    publishJoin: (channel, info) => via((e) => e.broker.publishJoin(channel, info)),
    publishLeave: (channel, info) => via((e) => e.broker.publishLeave(channel, info)),
    publishControl: (message) => via((e) => e.broker.publishControl(message)),
    subscribe: (channel) => via((e) => e.broker.subscribe(channel)),
    unsubscribe: (channel) => via((e) => e.broker.unsubscribe(channel)),
    close: () => via((e) => e.broker.close()),
  };
  const history: History = {
    history: (channel, query) => via((e) => e.history.history(channel, query)),
    removeHistory: (channel) => via((e) => e.history.removeHistory(channel)),
    rotateEpoch: (channel, epoch) => via((e) => e.history.rotateEpoch(channel, epoch)),
  };
  const presence: PresenceManager = {
    addPresence: (channel, info, ttlMs) => via((e) => e.presence.addPresence(channel, info, ttlMs)),
    removePresence: (channel, clientId, user) => via((e) => e.presence.removePresence(channel, clientId, user)),
    presence: (channel) => via((e) => e.presence.presence(channel)),
    presenceStats: (channel) => via((e) => e.presence.presenceStats(channel)),
  };
  function lifecycleOf(e: Engine): LifecycleStore {
    if (!e.lifecycle) throw new Error(`the ${opts.name} engine keeps no lifecycle state`);
    return e.lifecycle;
  }
  const lifecycle: LifecycleStore = {
    hold: (channel, key, node, ttlMs) => via((e) => lifecycleOf(e).hold(channel, key, node, ttlMs)),
    release: (channel, key, node) => via((e) => lifecycleOf(e).release(channel, key, node)),
    sweep: (limit) => via((e) => lifecycleOf(e).sweep(limit)),
  };
  function mapOf(e: Engine): MapBroker {
    if (!e.map) throw new Error(`the ${opts.name} engine has no map broker`);
    return e.map;
  }
  const map: MapBroker = {
    publish: (channel, key, change, options) => via((e) => mapOf(e).publish(channel, key, change, options)),
    remove: (channel, key, options) => via((e) => mapOf(e).remove(channel, key, options)),
    readState: (channel, query) => via((e) => mapOf(e).readState(channel, query)),
    // The loaded engine's close() closes its map broker.
    close: async () => {},
  };
  return {
    name: opts.name,
    capabilities: opts.capabilities,
    broker,
    history,
    presence,
    ...(opts.lifecycle ? { lifecycle } : {}),
    ...(opts.map ? { map } : {}),
    isReady: () => inner?.isReady() ?? false,
    notReadyReason: () => {
      if (inner) return inner.notReadyReason?.() ?? `${opts.name} engine not reachable`;
      return failure ? failure.message : `${opts.name} engine still loading`;
    },
    async close() {
      // A load that failed has nothing to close.
      const engine = await loading.catch(() => undefined);
      await engine?.close();
    },
  };
}
