import type { Engine } from '../../src/engine/engine.js';
import { createMemoryEngine } from '../../src/engine/memory/index.js';

/**
 * Every engine the conformance suite runs against. An engine joins the suite by adding a factory here
 * (the Redis engine adds one that uses its own key prefix per run).
 */
export const engineFactories: Record<string, () => Promise<Engine>> = {
  memory: async () => createMemoryEngine(),
};

export const engineNames = (process.env.HERALD_TEST_ENGINES ?? Object.keys(engineFactories).join(','))
  .split(',').map((s) => s.trim()).filter((s) => s in engineFactories);
