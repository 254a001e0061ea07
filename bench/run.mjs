#!/usr/bin/env node
// npm run bench [-- --quick] [--only idle,fanout,redis-history] [--targets herald,ws-raw,ws-preframed] [--reps 3] [--connect-clients 2] [--no-build] [--out DIR]
// Starts each target in its own process, drives it from a separate load client process over loopback, runs the
// targets of each scenario interleaved (A B C, A B C, A B C) and writes bench/results/<date>.{json,md,svg} and
// bench/results/latest.json. Never part of `npm test`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadavg, machineInfo, waitQuiet } from './lib/proc.mjs';
import { writeResults } from './lib/report.mjs';
import { summarize } from './lib/stats.mjs';
import { startRedis } from './lib/redis.mjs';
import { scenarios as defaultScenarios } from './scenarios/index.mjs';
import { scale } from './scenarios/scale.mjs';
import { heraldMain, repoRoot, setRedisUrl, TARGETS } from './targets/index.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    targets: { type: 'string' },
    reps: { type: 'string' },
    'connect-clients': { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    'max-quiet-wait': { type: 'string' },
    out: { type: 'string', default: join(here, 'results') },
    'no-latest': { type: 'boolean', default: false },
    // The scale scenario (only with --only scale): N connections, load clients, publications/s and stop signal of the storm.
    'scale-n': { type: 'string' },
    'scale-clients': { type: 'string' },
    'scale-rate': { type: 'string' },
    'scale-signal': { type: 'string' },
  },
});

const quick = opt.quick;
const cfg = quick
  ? {
      reps: 3,
      idleCounts: [5000, 10000],
      settleMs: 700,
      fixedRate: 10,
      fixedRate2: 40,
      fixedMs: 1500,
      satMs: 1200,
      roundsMs: 1200,
      channelCounts: [2000, 20000],
      connectN: 5000,
      connectClients: 1,
      redisRate: 50,
      redisMs: 1200,
      quietWaitMs: 10_000,
    }
  : {
      reps: 3,
      idleCounts: [5000, 10000],
      settleMs: 3000,
      fixedRate: 10,
      fixedRate2: 40,
      fixedMs: 10_000,
      satMs: 5000,
      roundsMs: 5000,
      channelCounts: [2000, 20000],
      connectN: 5000,
      connectClients: 1,
      redisRate: 50,
      redisMs: 5000,
      quietWaitMs: 90_000,
    };
if (opt.reps) cfg.reps = Number(opt.reps);
if (opt['connect-clients']) cfg.connectClients = Number(opt['connect-clients']);
if (opt['scale-n']) cfg.scaleN = Number(opt['scale-n']);
if (opt['scale-clients']) cfg.scaleClients = Number(opt['scale-clients']);
if (opt['scale-rate']) cfg.scaleRate = Number(opt['scale-rate']);
if (opt['scale-signal']) cfg.scaleSignal = opt['scale-signal'];
if (opt['max-quiet-wait']) cfg.quietWaitMs = Number(opt['max-quiet-wait']) * 1000;

const log = (...a) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);
const started = Date.now();
const QUICK_BUDGET_MS = 540_000;

if (!opt['no-build']) {
  log('building @herald/server (tsc -b packages/server)');
  const r = spawnSync('npx', ['tsc', '-b', 'packages/server'], { cwd: repoRoot, stdio: 'inherit' });
  if (r.status !== 0 && !existsSync(heraldMain)) {
    console.error('bench: the server does not build and there is no previous build');
    process.exit(1);
  }
  if (r.status !== 0) log('warning: build failed; benchmarking the previous build in packages/server/dist');
}

// `scale` takes minutes (100k connections and a restart): only when asked for with --only.
const scenarios = { ...defaultScenarios, scale };
const only = opt.only ? opt.only.split(',') : Object.keys(defaultScenarios);
const onlyTargets = opt.targets ? new Set(opt.targets.split(',')) : undefined;
// Scenarios with a target on Redis (multinode, redis-history, channels' herald-redis) share one Redis.
const usesRedis = (name) =>
  scenarios[name]?.targets.some((t) => TARGETS[t]?.redis && (!onlyTargets || onlyTargets.has(t)));
const redis = only.some(usesRedis) ? await startRedis() : undefined;
if (only.some(usesRedis)) {
  if (redis) {
    setRedisUrl(redis.url);
    cfg.redis = { port: redis.port, pid: redis.pid };
    log(`Redis targets use ${redis.private ? 'a private redis-server at' : 'the Redis at'} ${redis.url}`);
  } else log('no redis-server binary and no Redis at BENCH_REDIS_URL / 127.0.0.1:6379: Redis targets are skipped');
}

const machine = { ...machineInfo(), load_at_start: loadavg() };
const results = {
  machine,
  mode: quick ? 'quick' : 'full',
  config: { ...cfg, redis: undefined },
  started: new Date(started).toISOString(),
  quiet: {},
  trials: [],
  reps_done: {},
  scenarios: {},
};

for (const name of only) {
  const sc = scenarios[name];
  if (!sc) throw new Error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`);
  const targets = sc.targets.filter((t) => (!onlyTargets || onlyTargets.has(t)) && (redis || !TARGETS[t]?.redis));
  if (targets.length === 0) continue;
  const q = await waitQuiet({ maxWaitMs: cfg.quietWaitMs, log });
  results.quiet[name] = q;
  log(
    `${name}: load ${q.load.l1} (idle ${Math.round(q.idleFraction * 100)}%${q.quiet ? '' : ', NOT quiet after ' + Math.round(q.waitedMs / 1000) + ' s'})`,
  );
  const perTarget = Object.fromEntries(targets.map((t) => [t, []]));
  const scenarioStart = Date.now();
  const left = only.slice(only.indexOf(name) + 1).length;
  for (let rep = 1; rep <= cfg.reps; rep++) {
    // Quick mode keeps its promise of finishing in under 5 minutes on a busy machine: a repeat is skipped when it
    // would not leave ~25 s for each scenario still to come (the report states the repeats actually done).
    const perRound = (Date.now() - scenarioStart) / Math.max(1, rep - 1);
    if (quick && rep > 1 && Date.now() - started + perRound + 25_000 * left > QUICK_BUDGET_MS) {
      log(`${name}: time budget: stopping after ${rep - 1} repeat(s)`);
      break;
    }
    results.reps_done[name] = rep;
    for (const target of targets) {
      const t0 = Date.now();
      const load = loadavg().l1;
      try {
        const m = await sc.run(target, cfg);
        perTarget[target].push(m);
        results.trials.push({ scenario: name, target, rep, load, ms: Date.now() - t0, metrics: m });
        log(`${name} ${target} #${rep}: ${JSON.stringify(m)}`);
      } catch (err) {
        results.trials.push({
          scenario: name,
          target,
          rep,
          load,
          ms: Date.now() - t0,
          error: String(err.message ?? err),
        });
        log(`${name} ${target} #${rep} FAILED: ${err.message ?? err}`);
      }
    }
  }
  results.scenarios[name] = {};
  for (const [target, runs] of Object.entries(perTarget)) {
    if (runs.length === 0) continue;
    const keys = [...new Set(runs.flatMap((r) => Object.keys(r)))];
    results.scenarios[name][target] = Object.fromEntries(
      keys.map((k) => [k, summarize(runs.map((r) => r[k]))]).filter(([, v]) => v),
    );
  }
}

await redis?.stop();
results.finished = new Date().toISOString();
results.duration_s = Math.round((Date.now() - started) / 1000);
const files = writeResults(results, { outDir: opt.out, latest: !opt['no-latest'], scenarioDefs: scenarios });
log(`done in ${results.duration_s} s: ${files.join(', ')}`);
