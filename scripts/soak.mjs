#!/usr/bin/env node
// `npm run soak`: the heavy variants of the reliability suite, not part of `npm test` or CI (about 3-5 minutes).
//   - the nothing-lost checker: HERALD_SOAK_ROUNDS fault rounds (Redis frozen, its pub/sub connections killed, a node
//     SIGKILLed and replaced, Redis restarted empty), HERALD_SOAK_SUBSCRIBERS SDK subscribers, HERALD_SOAK_PUBLISHERS;
//     the same bounds as in `npm test`: `recovered: false` only after each restart and only for what it could take,
//     refusals only during the freezes and restarts, at most one unanswered publish per publisher per killed node;
//   - the slow consumer: HERALD_SOAK_SLOW_MIB MiB through each channel of a stalled client, same memory bound;
//   - the HTTP front-door fuzzer: HERALD_FUZZ_RUNS generated requests on every route;
//   - the transport fuzzer: HERALD_TRANSPORT_FUZZ_RUNS generated runs of frames on WebSocket, HTTP-streaming and SSE.
// Every variable can be set from the environment; the defaults below are the soak's.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const defaults = {
  HERALD_SOAK_ROUNDS: '10',
  HERALD_SOAK_SUBSCRIBERS: '60',
  HERALD_SOAK_PUBLISHERS: '6',
  HERALD_SOAK_SLOW_MIB: '100',
  HERALD_FUZZ_RUNS: '5000',
  HERALD_TRANSPORT_FUZZ_RUNS: '10000',
};
const env = { ...defaults, ...process.env };
console.log(
  `soak: ${Object.keys(defaults)
    .map((k) => `${k}=${env[k]}`)
    .join(' ')}`,
);
const r = spawnSync(
  process.execPath,
  [
    'scripts/test.mjs',
    'tests/reliability/nothing-lost.test.ts',
    'tests/reliability/slow-consumer.test.ts',
    'packages/server/test/security/http-fuzz.test.ts',
    'packages/server/test/security/transport-fuzz.test.ts',
  ],
  {
    cwd: root,
    env,
    stdio: 'inherit',
  },
);
process.exit(r.status ?? 1);
