/** Step 1: resolve the host and open a TCP connection; when nothing listens, look for Herald on nearby usual ports. */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { Finding, Target } from './finding.js';
import { withPort } from './finding.js';
import { exchange, plainGetRequest } from './http-wire.js';

export interface ConnectAttempt {
  address: string;
  ok: boolean;
  code?: string;
  ms: number;
}

export interface TcpObservation {
  addresses: string[];
  resolveError?: { code: string; message: string };
  attempts: ConnectAttempt[];
  /** A Herald found on another port while the URL's port refused. */
  heraldNearby?: { url: string; version: string };
}

export async function resolveHost(
  host: string,
): Promise<{ addresses: string[]; error?: { code: string; message: string } }> {
  if (net.isIP(host)) return { addresses: [host] };
  try {
    const all = await lookup(host, { all: true });
    return { addresses: [...new Set(all.map((a) => a.address))] };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { addresses: [], error: { code: e.code ?? 'ERROR', message: e.message } };
  }
}

export function tcpConnect(address: string, port: number, timeoutMs: number): Promise<ConnectAttempt> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port, family: net.isIPv6(address) ? 6 : 4 });
    const done = (ok: boolean, code?: string) => {
      clearTimeout(timer);
      socket.destroy();
      const a: ConnectAttempt = { address, ok, ms: Math.round(performance.now() - started) };
      if (code) a.code = code;
      resolve(a);
    };
    const timer = setTimeout(() => done(false, 'ETIMEDOUT'), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', (err: NodeJS.ErrnoException) => done(false, err.code ?? 'ERROR'));
  });
}

/**
 * Ports where a Herald usually is: WS_PORT from the environment (the server reads it too), Herald's default
 * 3002, Centrifugo's 8000, the usual app ports, and the neighbours of the URL's port.
 */
export function candidatePorts(urlPort: number, envPort: string | undefined): number[] {
  const out: number[] = [];
  const env = Number(envPort);
  if (Number.isInteger(env) && env > 0 && env < 65536) out.push(env);
  out.push(3002, urlPort + 1, urlPort + 2, urlPort - 1, urlPort - 2, 3000, 3001, 8000, 8080);
  return [...new Set(out)].filter((p) => p !== urlPort && p > 0 && p < 65536);
}

/** Asks each candidate port for the Herald marker on a plain GET of `paths`; returns the first in candidate order. */
export async function findHeraldNearby(
  t: Target,
  address: string,
  ports: number[],
  paths: string[],
  timeoutMs: number,
): Promise<{ url: string; version: string } | undefined> {
  const probes = ports.map(async (port) => {
    const c = await tcpConnect(address, port, Math.min(timeoutMs, 500));
    if (!c.ok) return undefined;
    for (const path of paths) {
      const o = await exchange(
        { host: t.host, address, port, secure: t.secure },
        plainGetRequest(t.host, port, t.defaultPort, path),
        { timeoutMs: Math.min(timeoutMs, 1500) },
      );
      if (o.kind === 'response' && o.response.headers['x-herald-version']) {
        return { url: withPort(t, port, path), version: o.response.headers['x-herald-version'] };
      }
    }
    return undefined;
  });
  for (const r of await Promise.all(probes)) if (r) return r;
  return undefined;
}

export function interpretTcp(t: Target, o: TcpObservation): Finding {
  const hostPort = `${t.host}:${t.port}`;
  const details = { addresses: o.addresses, attempts: o.attempts } as Record<string, unknown>;
  if (o.resolveError) {
    return {
      step: 'tcp',
      status: 'fail',
      code: 'host_not_found',
      saw: `${t.host} does not resolve (${o.resolveError.code})`,
      means: 'No address for this name, so no browser can reach it either.',
      fix: `Check the host name in the URL; for a local server use localhost or 127.0.0.1 (e.g. ws://localhost:3002/ws).`,
      details,
    };
  }
  const ok = o.attempts.find((a) => a.ok);
  if (ok) {
    const refused = o.attempts.filter((a) => !a.ok);
    let saw = `connected to ${ok.address}:${t.port} in ${ok.ms} ms`;
    if (refused.length > 0) saw += ` (${refused.map((a) => `${a.address}: ${a.code}`).join(', ')} first)`;
    const f: Finding = {
      step: 'tcp',
      status: 'pass',
      code: 'tcp_ok',
      saw,
      details: { ...details, address: ok.address },
    };
    if (refused.some((a) => net.isIPv6(a.address)) && net.isIPv4(ok.address)) {
      f.means =
        `${t.host} resolves to IPv6 first and nothing listens there: browsers fall back to IPv4, some clients do not. ` +
        `HERALD_HOST=:: makes Herald listen on both.`;
    }
    return f;
  }
  const codes = [...new Set(o.attempts.map((a) => a.code))];
  if (codes.every((c) => c === 'ECONNREFUSED')) {
    if (o.heraldNearby) {
      return {
        step: 'tcp',
        status: 'fail',
        code: 'wrong_port',
        saw: `nothing listens on ${hostPort} (connection refused), but Herald ${o.heraldNearby.version} answers nearby`,
        means: `Herald is at ${o.heraldNearby.url}`,
        fix:
          `Point the client at ${o.heraldNearby.url} (NEXT_PUBLIC_HERALD_URL=${o.heraldNearby.url}), ` +
          `or start Herald on port ${t.port} with WS_PORT=${t.port}.`,
        details: { ...details, heraldNearby: o.heraldNearby },
      };
    }
    return {
      step: 'tcp',
      status: 'fail',
      code: 'nothing_listening',
      saw: `nothing listens on ${hostPort} (connection refused on ${o.attempts.map((a) => a.address).join(', ')})`,
      means: 'No server runs on this port, and no Herald answers on the usual ports nearby.',
      fix: `Start Herald: npx herald serve (it listens on WS_PORT, default 3002; WS_PORT=${t.port} to use this port).`,
      details,
    };
  }
  if (codes.includes('ETIMEDOUT')) {
    return {
      step: 'tcp',
      status: 'fail',
      code: 'tcp_timeout',
      saw: `no TCP answer from ${hostPort} (timed out)`,
      means: 'Packets are dropped on the way: a firewall, a security group, or a host that is down.',
      fix: `Open port ${t.port} to this machine, or check that the host is up.`,
      details,
    };
  }
  return {
    step: 'tcp',
    status: 'fail',
    code: 'tcp_error',
    saw: `cannot connect to ${hostPort}: ${codes.join(', ')}`,
    means: 'The network refuses the route to this host.',
    fix: 'Check the host name and the network path (VPN, container network, firewall).',
    details,
  };
}
