// Writes <date>.json (everything, with per-trial data), <date>.md (tables), <date>-fanout-cpu.svg and latest.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { barChartSvg } from './chart.mjs';

/** Which metrics each scenario's table shows, in order, with units. */
const COLUMNS = {
  idle: [
    ['rss_kb_per_conn', 'KB/conn @10k'],
    ['rss_kb_per_conn_5k', 'KB/conn @5k'],
    ['heap_kb_per_conn', 'heap KB/conn after GC @10k'],
    ['heap_kb_per_conn_5k', 'heap KB/conn after GC @5k'],
  ],
  scale: [
    ['rss_kb_per_conn', 'KB/conn'],
    ['heap_kb_per_conn', 'heap KB/conn after GC'],
    ['rss_gc_kb_per_conn', 'RSS KB/conn after GC'],
    ['n', 'connections'],
    ['conns_per_s', 'conns/s'],
    ['storm_s', 'restart → all recovered, s'],
    ['refused_connects', 'refused connects'],
    ['lost_pubs', 'lost pubs'],
    ['dupe_pubs', 'duplicate pubs'],
    ['recovered_false', 'recovered: false'],
    ['pubs_acked', 'acked pubs'],
  ],
  fanout: [
    ['cpu_us_per_delivery', 'CPU µs/delivery (sat.)'],
    ['deliveries_per_s', 'deliveries/s (sat.)'],
    ['p50_ms', 'p50 ms @10k/s'],
    ['p99_ms', 'p99 ms @10k/s'],
    ['max_ms', 'max ms @10k/s'],
    ['fixed_cpu_us_per_delivery', 'CPU µs/delivery @10k/s'],
    ['fixed40_cpu_us_per_delivery', 'CPU µs/delivery @40k/s'],
    ['p99_ms_40', 'p99 ms @40k/s'],
    ['client_cpu_pct', 'client CPU % (sat.)'],
  ],
  channels: [
    ['cpu_us_per_delivery', 'CPU µs/delivery @2k'],
    ['cpu_us_per_delivery_20k', 'CPU µs/delivery @20k'],
    ['deliveries_per_s', 'deliveries/s @2k'],
    ['deliveries_per_s_20k', 'deliveries/s @20k'],
    ['p50_ms', 'p50 ms @2k'],
    ['p99_ms', 'p99 ms @2k'],
    ['p99_ms_20k', 'p99 ms @20k'],
    ['client_cpu_pct', 'client CPU % @2k'],
    ['client_cpu_pct_20k', 'client CPU % @20k'],
    ['channels_n_20k', 'N used for 20k (fd limit)'],
  ],
  connect: [
    ['conns_per_s', 'conns/s'],
    ['cpu_us_per_conn', 'CPU µs/conn'],
    ['client_cpu_pct', 'client CPU %'],
  ],
  'connect-proxy': [
    ['conns_per_s', 'conns/s'],
    ['cpu_us_per_conn', 'Herald CPU µs/conn'],
    ['backend_cpu_us_per_conn', 'proxy backend CPU µs/conn'],
    ['client_cpu_pct', 'client CPU %'],
  ],
  multinode: [
    ['deliveries_per_s', 'deliveries/s (sat.)'],
    ['cpu_us_per_delivery', 'CPU µs/delivery, both nodes'],
    ['p50_ms', 'p50 ms @10k/s'],
    ['p99_ms', 'p99 ms @10k/s'],
    ['redis_cmd_us_per_pub', 'Redis publish-path µs/pub, 1000 subs'],
    ['redis_cmd_us_per_pub_100subs', 'Redis publish-path µs/pub, 100 subs'],
    ['redis_calls_per_pub', 'Redis calls/pub, 1000 subs'],
    ['redis_calls_per_pub_100subs', 'Redis calls/pub, 100 subs'],
    ['redis_us_per_pub', 'Redis CPU µs/pub, 1000 subs'],
    ['redis_us_per_pub_100subs', 'Redis CPU µs/pub, 100 subs'],
  ],
  'redis-history': [
    ['deliveries_per_cpu_s', 'deliveries per server CPU s'],
    ['cpu_us_per_pub', 'server CPU µs/pub'],
    ['pubs_per_s', 'pubs/s (64 in flight)'],
    ['deliveries_per_s', 'deliveries/s'],
    ['redis_us_per_pub', 'Redis CPU µs/pub'],
    ['redis_cmd_us_per_pub', 'Redis publish-path µs/pub'],
    ['redis_calls_per_pub', 'Redis calls/pub'],
    ['deliveries_per_cpu_s_with_redis', 'deliveries per server+Redis CPU s'],
    ['client_cpu_pct', 'client CPU %'],
  ],
};

const fmt = (v) =>
  v === undefined || v === null || !Number.isFinite(v)
    ? '–'
    : Math.abs(v) >= 100
      ? String(Math.round(v))
      : String(+v.toFixed(v >= 10 ? 1 : 2));

/** The target each scenario's ratios are taken against (the `×` column). */
const BASE = { 'connect-proxy': 'herald', 'redis-history': 'socketio-redis' };
const LABEL = { 'ws-raw': 'ws', 'socketio-redis': 'sio-redis' };
const baseOf = (scenario) => BASE[scenario] ?? 'ws-raw';

function ratio(scen, target, metric, base = 'ws-raw') {
  const a = scen?.[target]?.[metric]?.median;
  const b = scen?.[base]?.[metric]?.median;
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : undefined;
}

/**
 * The issue's targets for Herald, evaluated on medians. `defs` are the scenario definitions: a scenario may carry
 * `check(scenarioResults, allResults)` returning `{ text, parts }` (parts shaped as `c()` returns them) for its own
 * row; the `scale` scenario's row reads it when the scenario is there.
 */
export function evaluateTargets(s, defs = {}) {
  const c = (scenario, metric, against, op, factor, { target = 'herald', label } = {}) => {
    const r = ratio(s[scenario], target, metric, against);
    return {
      label,
      against,
      op,
      factor,
      ratio: r === undefined ? null : +r.toFixed(3),
      holds: r === undefined ? null : op === '<=' ? r <= factor : r >= factor,
    };
  };
  const checks = [
    {
      id: 'cpu_per_delivery',
      text: 'server CPU per delivery at saturation ≤ 0.8× ws-raw and ≤ 0.8× Socket.IO',
      scenario: 'fanout',
      metric: 'cpu_us_per_delivery',
      parts: [
        c('fanout', 'cpu_us_per_delivery', 'ws-raw', '<=', 0.8),
        c('fanout', 'cpu_us_per_delivery', 'socketio', '<=', 0.8),
      ],
    },
    {
      id: 'memory_per_conn',
      text: 'memory per idle subscribed connection at 10k ≤ 1.3× ws-raw and ≤ 0.6× Socket.IO',
      scenario: 'idle',
      metric: 'rss_kb_per_conn',
      parts: [c('idle', 'rss_kb_per_conn', 'ws-raw', '<=', 1.3), c('idle', 'rss_kb_per_conn', 'socketio', '<=', 0.6)],
    },
    {
      id: 'connect_rate',
      text: 'connect+auth+subscribe rate ≥ 0.8× ws-raw and ≥ 2× Socket.IO',
      scenario: 'connect',
      metric: 'conns_per_s',
      parts: [c('connect', 'conns_per_s', 'ws-raw', '>=', 0.8), c('connect', 'conns_per_s', 'socketio', '>=', 2)],
    },
    {
      id: 'fanout_p99',
      text: 'fan-out p99 latency at the fixed rate ≤ ws-raw',
      scenario: 'fanout',
      metric: 'p99_ms',
      parts: [c('fanout', 'p99_ms', 'ws-raw', '<=', 1)],
    },
  ];
  const cp = ratio(s['connect-proxy'], 'herald-connect-proxy', 'conns_per_s', 'herald');
  checks.push({
    id: 'connect_proxy_rate',
    text: 'connect+auth+subscribe rate through the connect proxy ≥ 0.6× the JWT path',
    scenario: 'connect-proxy',
    metric: 'conns_per_s',
    parts: [
      {
        against: 'herald (JWT)',
        op: '>=',
        factor: 0.6,
        ratio: cp === undefined ? null : +cp.toFixed(3),
        holds: cp === undefined ? null : cp >= 0.6,
      },
    ],
  });
  const hr = s.multinode?.['herald-redis'];
  const big = hr?.redis_cmd_us_per_pub?.median;
  const small = hr?.redis_cmd_us_per_pub_100subs?.median;
  const rr = Number.isFinite(big) && Number.isFinite(small) && small > 0 ? big / small : undefined;
  checks.push({
    id: 'redis_per_pub_constant',
    text: 'multi-node: Redis work per publication constant in #subscribers (1,000 vs 100 subscribers, within 1.5×)',
    scenario: 'multinode',
    metric: 'redis_cmd_us_per_pub',
    parts: [
      {
        against: 'herald-redis @100 subscribers',
        op: '<=',
        factor: 1.5,
        ratio: rr === undefined ? null : +rr.toFixed(3),
        holds: rr === undefined ? null : rr <= 1.5,
      },
    ],
  });
  // The five targets of issue #17 (performance).
  checks.push({
    id: 'cpu_per_delivery_preframed',
    text: '#17 (1): server CPU per delivery ≤ 0.8× ws-preframed at 10/s, 40/s (1,000 subscribers) and saturation',
    scenario: 'fanout',
    metric: 'cpu_us_per_delivery',
    parts: [
      c('fanout', 'fixed_cpu_us_per_delivery', 'ws-preframed', '<=', 0.8, { label: '10/s' }),
      c('fanout', 'fixed40_cpu_us_per_delivery', 'ws-preframed', '<=', 0.8, { label: '40/s' }),
      c('fanout', 'cpu_us_per_delivery', 'ws-preframed', '<=', 0.8, { label: 'saturated' }),
    ],
  });
  checks.push({
    id: 'channels_cpu_per_delivery',
    text: '#17 (2): channels: server CPU per delivery ≤ 0.8× ws-raw at 2k and 20k channels, memory and Redis engine',
    scenario: 'channels',
    metric: 'cpu_us_per_delivery',
    parts: [
      c('channels', 'cpu_us_per_delivery', 'ws-raw', '<=', 0.8, { label: 'herald 2k' }),
      c('channels', 'cpu_us_per_delivery_20k', 'ws-raw', '<=', 0.8, { label: 'herald 20k' }),
      c('channels', 'cpu_us_per_delivery', 'ws-raw', '<=', 0.8, { target: 'herald-redis', label: 'herald-redis 2k' }),
      c('channels', 'cpu_us_per_delivery_20k', 'ws-raw', '<=', 0.8, {
        target: 'herald-redis',
        label: 'herald-redis 20k',
      }),
    ],
  });
  const scaleCheck = s.scale && defs.scale?.check ? defs.scale.check(s.scale, s) : undefined;
  checks.push({
    id: 'scale',
    text: scaleCheck?.text ?? '#17 (3): the 100k-connection scenario (`scale`)',
    scenario: 'scale',
    metric: scaleCheck?.metric,
    parts: scaleCheck?.parts ?? [{ against: 'the `scale` scenario', op: '', factor: '', ratio: null, holds: null }],
  });
  checks.push({
    id: 'redis_history_throughput_per_cpu',
    text: '#17 (4): Redis engine with history: deliveries per server CPU second ≥ 1.2× Socket.IO Redis adapter',
    scenario: 'redis-history',
    metric: 'deliveries_per_cpu_s',
    parts: [
      c('redis-history', 'deliveries_per_cpu_s', 'socketio-redis', '>=', 1.2, {
        target: 'herald-redis-history',
        label: 'herald-redis-history',
      }),
    ],
  });
  checks.push({
    id: 'connect_cpu_per_conn',
    text: '#17 (5): connect+auth+subscribe server CPU per connection ≤ 0.7× ws-raw',
    scenario: 'connect',
    metric: 'cpu_us_per_conn',
    parts: [c('connect', 'cpu_us_per_conn', 'ws-raw', '<=', 0.7)],
  });
  const stretch = c('fanout', 'cpu_us_per_delivery', 'ws-raw', '<=', 0.5);
  checks.push({
    id: 'stretch_half_floor',
    text: 'stretch: CPU per delivery ≤ 0.5× ws-raw',
    scenario: 'fanout',
    metric: 'cpu_us_per_delivery',
    parts: [stretch],
  });
  for (const k of checks)
    k.holds = k.parts.every((p) => p.holds === true) ? true : k.parts.some((p) => p.holds === false) ? false : null;
  return checks;
}

export function markdown(results, checks, chartFile) {
  const m = results.machine;
  const L = [];
  L.push(`# Herald benchmark, ${results.started.slice(0, 16).replace('T', ' ')} UTC (${results.mode})`, '');
  L.push(
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.mem_gb} GB, ${m.os}, Node ${m.node}. Load at start ${m.load_at_start.l1}. Run took ${results.duration_s} s; ${results.config.reps} repeats per target, interleaved.`,
    '',
  );
  L.push(
    "Cells are `median (min–max)` of the repeats; `×ws` is the median's ratio to ws-raw's (`×herald` in connect-proxy: to the JWT path's).",
    '',
  );
  for (const [name, scen] of Object.entries(results.scenarios)) {
    const cols = COLUMNS[name] ?? [];
    const q = results.quiet[name];
    L.push(`## ${name}`, '');
    const done = results.reps_done?.[name];
    if (done !== undefined && done < results.config.reps)
      L.push(`Only ${done} of ${results.config.reps} repeats (quick mode's time budget on a busy machine).`, '');
    if (q)
      L.push(
        `Load before: ${q.load.l1} (1 min), CPU idle ${Math.round(q.idleFraction * 100)}% over 1 s${q.quiet ? '' : ' — the machine was **not quiet** (waited ' + Math.round(q.waitedMs / 1000) + ' s)'}.`,
        '',
      );
    const present = cols.filter(([k]) => Object.values(scen).some((t) => t[k]));
    L.push(`| target | ${present.map(([, h]) => h).join(' | ')} |`);
    L.push(`|---|${present.map(() => '---').join('|')}|`);
    for (const [target, metrics] of Object.entries(scen)) {
      const base = baseOf(name);
      const cells = present.map(([k]) => {
        const v = metrics[k];
        if (!v) return '–';
        const r = name !== 'multinode' && target !== base ? ratio(scen, target, k, base) : undefined;
        const label = LABEL[base] ?? base;
        const showRatio = r !== undefined && !k.startsWith('client') && !k.startsWith('channels_n');
        return `${fmt(v.median)} (${fmt(v.min)}–${fmt(v.max)})${showRatio ? ` ${r.toFixed(2)}×${label}` : ''}`;
      });
      L.push(`| ${target} | ${cells.join(' | ')} |`);
    }
    L.push('');
  }
  L.push('## Targets for Herald', '');
  L.push('| target | measured | holds |', '|---|---|---|');
  for (const k of checks) {
    const measured = k.parts
      .map((p) =>
        p.op
          ? `${p.label ? `${p.label}: ` : ''}${p.ratio ?? '–'}× ${p.against} (needs ${p.op} ${p.factor})`
          : `${p.ratio ?? '–'} (${p.against})`,
      )
      .join('; ');
    L.push(`| ${k.text} | ${measured} | ${k.holds === null ? 'not measured' : k.holds ? 'yes' : '**no**'} |`);
  }
  L.push('');
  if (chartFile) L.push(`![server CPU per delivery at fan-out saturation](${chartFile})`, '');
  const failed = results.trials.filter((t) => t.error);
  if (failed.length) {
    L.push('## Failed trials', '');
    for (const t of failed) L.push(`- ${t.scenario} ${t.target} #${t.rep}: ${t.error.split('\n')[0]}`);
    L.push('');
  }
  return L.join('\n');
}

export function writeResults(results, { outDir, latest = true, scenarioDefs }) {
  mkdirSync(outDir, { recursive: true });
  const stamp = results.started.slice(0, 10) + (results.mode === 'quick' ? '-quick' : '');
  const checks = evaluateTargets(results.scenarios, scenarioDefs);
  results.targets = checks;
  results.ratios_to_ws_raw = {};
  for (const [name, scen] of Object.entries(results.scenarios)) {
    for (const [target, metrics] of Object.entries(scen)) {
      if (target === 'ws-raw' || name === 'multinode') continue;
      for (const k of Object.keys(metrics)) {
        const r = ratio(scen, target, k);
        if (r !== undefined) ((results.ratios_to_ws_raw[name] ??= {})[target] ??= {})[k] = +r.toFixed(3);
      }
    }
  }
  const files = [];
  const fan = results.scenarios.fanout;
  let chartFile;
  if (fan) {
    chartFile = `${stamp}-fanout-cpu.svg`;
    const bars = Object.entries(fan)
      .filter(([, m]) => m.cpu_us_per_delivery)
      .map(([label, m]) => ({ label, ...m.cpu_us_per_delivery }));
    const svg = barChartSvg({
      title: 'Server CPU per delivery at fan-out saturation (lower is better)',
      subtitle: `1,000 subscribers, one channel, ~100-byte payloads; median and min–max of ${results.config.reps}; ${results.machine.cores} cores, Node ${results.machine.node}, ${results.started.slice(0, 10)}`,
      unit: 'µs',
      bars,
    });
    writeFileSync(join(outDir, chartFile), svg);
    files.push(chartFile);
    if (latest) writeFileSync(join(outDir, 'latest-fanout-cpu.svg'), svg);
  }
  writeFileSync(join(outDir, `${stamp}.json`), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(outDir, `${stamp}.md`), markdown(results, checks, chartFile) + '\n');
  files.push(`${stamp}.json`, `${stamp}.md`);
  if (latest) {
    const machine = {
      ...results.machine,
      date: results.started,
      mode: results.mode,
      reps: results.config.reps,
      load_before: Object.fromEntries(Object.entries(results.quiet).map(([k, q]) => [k, q.load.l1])),
    };
    writeFileSync(
      join(outDir, 'latest.json'),
      JSON.stringify({ machine, scenarios: results.scenarios }, null, 2) + '\n',
    );
    files.push('latest.json');
  }
  return files.map((f) => join(outDir, f));
}
