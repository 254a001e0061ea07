// Child process of node.test.ts: creates a Herald from the environment (HERALD_ENGINE), publishes once to a channel
// with history, closes, and prints the publish's offset and how many modules under node_modules/ioredis were loaded.
import { createRequire } from 'node:module';
import { createHerald } from '../../src/index.js';

const require = createRequire(import.meta.url);
const herald = createHerald({
  logger: false,
  env: { ...process.env, HERALD_TOKEN_SECRET: 'ioredis-loaded' },
  fileConfig: { channel: { without_namespace: { history_size: 10, history_ttl: '60s' } } },
});
await herald.listen(0, '127.0.0.1');
// A Redis engine is ready once connected (what /ready reports); bounded at 10 s.
for (let i = 0; i < 1000 && !herald.isReady(); i++) await new Promise((r) => setTimeout(r, 10));
const channel = `loaded-${process.pid}-${Date.now()}`;
const pos = await herald.publish(channel, { n: 1 });
await herald.removeHistory(channel);
await herald.close();
const loaded = Object.keys(require.cache).filter((k) =>
  k.split(/[\\/]/).join('/').includes('/node_modules/ioredis/'),
).length;
console.log(JSON.stringify({ loaded, offset: pos.offset }));
