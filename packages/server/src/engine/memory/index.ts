import type { Engine } from '../engine.js';
import { MemoryBroker } from './broker.js';
import { MemoryHistory } from './history.js';
import { MemoryMapBroker } from './map-broker.js';
import { MemoryPresence } from './presence.js';

/** The embedded single-node engine: everything in this process; history is lost (new epochs) on restart. */
export function createMemoryEngine(): Engine {
  const history = new MemoryHistory();
  history.startSweeper();
  const broker = new MemoryBroker(history);
  const presence = new MemoryPresence();
  const map = new MemoryMapBroker(history, broker);
  map.startSweeper();
  return {
    name: 'memory',
    // One process: no other node shares its broker, history or presence.
    capabilities: { shared: false },
    broker,
    history,
    presence,
    map,
    isReady: () => true,
    async close() {
      history.stopSweeper();
      await map.close();
      await broker.close();
    },
  };
}
