/**
 * What one step concluded. `code` is stable (scripts match on it; docs/doctor.md lists every code with a sample);
 * `saw` is the observation, `means` the explanation, `fix` the exact change to make.
 */
export type StepId = 'tcp' | 'http' | 'upgrade' | 'connect' | 'roundtrip';
export type StepStatus = 'pass' | 'fail' | 'warn' | 'skip';

export interface Finding {
  step: StepId;
  status: StepStatus;
  code: string;
  saw: string;
  means?: string;
  fix?: string;
  /** Extra facts for --json (addresses, headers, claims, latencies). */
  details?: Record<string, unknown>;
}

export const stepTitles: Readonly<Record<StepId, string>> = {
  tcp: 'TCP',
  http: 'HTTP',
  upgrade: 'Upgrade',
  connect: 'Connect',
  roundtrip: 'Round trip',
};

export const stepNumbers: Readonly<Record<StepId, number>> = { tcp: 1, http: 2, upgrade: 3, connect: 4, roundtrip: 5 };

export interface Target {
  /** The URL as given, normalised to ws:// or wss://. */
  wsUrl: string;
  /** The same endpoint as http:// or https:// (what a fetch of it would use). */
  httpUrl: string;
  secure: boolean;
  /** Host as written (no brackets for IPv6). */
  host: string;
  port: number;
  defaultPort: number;
  /** Path and query. */
  path: string;
}

/** Accepts ws, wss, http, https URLs (and bare host:port, taken as ws://). */
export function parseTarget(input: string): Target {
  let raw = input.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) raw = `ws://${raw}`;
  const u = new URL(raw);
  const proto = u.protocol.toLowerCase();
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(proto)) {
    throw new Error(`${input}: expected a ws://, wss://, http:// or https:// URL`);
  }
  const secure = proto === 'wss:' || proto === 'https:';
  const defaultPort = secure ? 443 : 80;
  const port = u.port === '' ? defaultPort : Number(u.port);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const path = (u.pathname || '/') + u.search;
  const hostPort = `${u.hostname}${u.port === '' ? '' : `:${u.port}`}`;
  return {
    wsUrl: `${secure ? 'wss' : 'ws'}://${hostPort}${path}`,
    httpUrl: `${secure ? 'https' : 'http'}://${hostPort}${path}`,
    secure,
    host,
    port,
    defaultPort,
    path,
  };
}

/** `target` with another port (for naming where Herald really is). */
export function withPort(t: Target, port: number, path = t.path): string {
  const h = t.host.includes(':') ? `[${t.host}]` : t.host;
  const p = port === t.defaultPort ? '' : `:${port}`;
  return `${t.secure ? 'wss' : 'ws'}://${h}${p}${path}`;
}

export function pathOnly(path: string): string {
  return path.split('?')[0] ?? '/';
}
