import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { closest } from './closest.js';
import { parseDurationMs } from './duration.js';
import type { NamespaceOptions } from './namespace.js';

/**
 * Proxies to the application's backend (docs/proxy.md), configured with Centrifugo v6's keys: `client.proxy.connect`,
 * `client.proxy.refresh`, `channel.proxy.subscribe|publish|sub_refresh`, `rpc.proxy`, the named `proxies[]`, and the
 * namespaces' `*_proxy_enabled` / `*_proxy_name`. HTTP(S) only.
 */
export interface ProxyEndpoint {
  /** 'default' for client.proxy.*, channel.proxy.* and rpc.proxy; the entry's name for `proxies[]`. */
  name: string;
  /** http:// or https:// URL; the only address this proxy ever calls. */
  endpoint: string;
  /** `timeout`: one call, waiting for a free slot included. @default 1 s */
  timeoutMs: number;
  /** `http_headers`, lower case: headers of the client's connection request forwarded to the backend. */
  httpHeaders: string[];
  /** `emulated_headers`, lower case: entries of the connect command's `headers` map forwarded (client-controlled). */
  emulatedHeaders: string[];
  /** `http.static_headers`: sent with every call; forwarded headers of the same name win. */
  staticHeaders: Record<string, string>;
  /** `include_connection_meta`: send the connection's `meta` (from the connect proxy) with the call. */
  includeConnectionMeta: boolean;
  /** `http.tls.server_ca_pem` (a PEM file path or PEM text): a private CA trusted besides the system's. */
  ca?: string;
  /** `http.status_to_code_transforms`: a non-200 status answered as this error or disconnect instead of 150. */
  statusTransforms: StatusTransform[];
  /** Herald: `max_in_flight`, calls at once; more wait for a slot within their timeout. @default 256 */
  maxInFlight: number;
  /** Herald: `max_response_size`, bytes of one answer; larger is error 151. @default 1 MiB */
  maxResponseBytes: number;
}

export interface StatusTransform {
  statusCode: number;
  toError?: { code: number; message: string; temporary: boolean };
  toDisconnect?: { code: number; reason: string };
}

export interface RpcNamespaceProxy {
  proxyEnabled: boolean;
  /** '' for rpc.proxy. */
  proxyName: string;
}

export interface ProxyConfig {
  connect?: ProxyEndpoint;
  refresh?: ProxyEndpoint;
  /** channel.proxy.subscribe: the namespaces' subscribe proxy when `subscribe_proxy_name` is empty. */
  subscribe?: ProxyEndpoint;
  publish?: ProxyEndpoint;
  subRefresh?: ProxyEndpoint;
  /** channel.proxy.shared_poll_refresh: the shared poll namespaces' refresh proxy when `shared_poll.proxy_name` is empty. */
  sharedPollRefresh?: ProxyEndpoint;
  rpc?: ProxyEndpoint;
  /** `proxies[]` by name. */
  named: Map<string, ProxyEndpoint>;
  rpcWithoutNamespace: RpcNamespaceProxy;
  rpcNamespaces: Map<string, RpcNamespaceProxy>;
}

export const DEFAULT_PROXY_TIMEOUT_MS = 1000;
export const DEFAULT_PROXY_MAX_IN_FLIGHT = 256;
export const DEFAULT_PROXY_MAX_RESPONSE_BYTES = 1024 * 1024;

/** Headers that frame the HTTP request itself: never forwarded from the client (Herald sets them). */
const unforwardable = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-connection',
]);

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an HTTP header name');

const tlsSchema = z.looseObject({
  enabled: z.boolean().optional(),
  server_ca_pem: z.string().optional(),
  insecure_skip_verify: z.boolean().optional(),
  cert_pem: z.string().optional(),
  key_pem: z.string().optional(),
  server_name: z.string().optional(),
});

const transformSchema = z.object({
  status_code: z.number().int().min(100).max(599),
  to_error: z
    .object({ code: z.number().int().min(1), message: z.string().optional(), temporary: z.boolean().optional() })
    .optional(),
  to_disconnect: z.object({ code: z.number().int().min(3000).max(4999), reason: z.string().max(123) }).optional(),
});

const httpSchema = z.looseObject({
  static_headers: z.record(headerName, z.string()).optional(),
  tls: tlsSchema.optional(),
  status_to_code_transforms: z.array(transformSchema).optional(),
});

const proxyShape = {
  enabled: z.boolean().optional(),
  endpoint: z.string().optional(),
  timeout: z.union([z.string(), z.number()]).optional(),
  http_headers: z.array(headerName).optional(),
  emulated_headers: z.array(headerName).optional(),
  grpc_metadata: z.array(z.string()).optional(),
  include_connection_meta: z.boolean().optional(),
  binary_encoding: z.boolean().optional(),
  http: httpSchema.optional(),
  grpc: z.unknown().optional(),
  max_in_flight: z.number().int().min(1).max(100_000).optional(),
  max_response_size: z.number().int().min(1024).optional(),
};
const proxySchema = z.looseObject(proxyShape);
const namedProxySchema = proxySchema.extend({
  name: z.string().regex(/^[-a-zA-Z0-9_.]{2,}$/, 'letters, digits, "-", "_" or "." (at least 2 characters)'),
});
const rpcNamespaceShape = {
  proxy_enabled: z.boolean().optional(),
  proxy_name: z.string().optional(),
};
const rpcSchema = z.looseObject({
  proxy: proxySchema.optional(),
  without_namespace: z.looseObject(rpcNamespaceShape).optional(),
  namespaces: z
    .array(
      z.looseObject({
        ...rpcNamespaceShape,
        name: z.string().regex(/^[-a-zA-Z0-9_.]{2,}$/, 'letters, digits, "-", "_" or "." (at least 2 characters)'),
      }),
    )
    .optional(),
});

/** The sections of a config file that carry proxies (each may be absent). */
export interface ProxyFileSections {
  clientProxy?: unknown;
  channelProxy?: unknown;
  proxies?: unknown;
  rpc?: unknown;
}

function pathOf(issue: z.core.$ZodIssue): string {
  return issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
}

function parse<T>(schema: z.ZodType<T>, value: unknown, where: string, problems: string[]): T | undefined {
  if (value === undefined) return undefined;
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  for (const issue of r.error.issues) {
    const p = pathOf(issue);
    problems.push(`${where}${p ? `.${p}` : ''}: ${issue.message}`);
  }
  return undefined;
}

function unknownKeys(
  section: unknown,
  known: Iterable<string>,
  where: string,
  problems: string[],
  warnings: string[],
): void {
  if (!section || typeof section !== 'object' || Array.isArray(section)) return;
  const set = new Set(known);
  for (const key of Object.keys(section)) {
    if (set.has(key)) continue;
    const guess = closest(key, set);
    if (guess) problems.push(`${where}.${key}: unknown option; did you mean "${where}.${guess}"?`);
    else warnings.push(`${where}.${key}: not supported by Herald, ignored`);
  }
}

function readCa(value: string, where: string, problems: string[]): string | undefined {
  if (value.includes('-----BEGIN')) return value;
  try {
    const text = readFileSync(value, 'utf8');
    if (!text.includes('-----BEGIN CERTIFICATE-----')) {
      problems.push(`${where}: ${value} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
      return undefined;
    }
    return text;
  } catch (err) {
    problems.push(
      `${where}: the CA file ${value} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
    return undefined;
  }
}

/** One proxy object: checked, with Herald's defaults; undefined when it has problems. */
function endpointFrom(
  raw: z.infer<typeof proxySchema>,
  name: string,
  where: string,
  problems: string[],
  warnings: string[],
): ProxyEndpoint | undefined {
  unknownKeys(raw, [...Object.keys(proxyShape), 'name'], where, problems, warnings);
  unknownKeys(raw.http, ['static_headers', 'tls', 'status_to_code_transforms'], `${where}.http`, problems, warnings);
  const before = problems.length;
  const endpoint = raw.endpoint ?? '';
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (endpoint.startsWith('grpc://')) {
    problems.push(`${where}.endpoint: gRPC proxies are not supported by Herald; give an http:// or https:// endpoint`);
  } else if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    problems.push(
      `${where}.endpoint: expected an http:// or https:// URL, got ${JSON.stringify(endpoint)} (e.g. "http://localhost:3000/centrifugo/connect")`,
    );
  } else if (url.username || url.password) {
    problems.push(`${where}.endpoint: credentials in the URL are not allowed; send them with http.static_headers`);
  }
  let timeoutMs = DEFAULT_PROXY_TIMEOUT_MS;
  if (raw.timeout !== undefined) {
    const ms = parseDurationMs(raw.timeout);
    if (ms === undefined || ms <= 0)
      problems.push(`${where}.timeout: expected a duration like "1s" or "500ms", got ${JSON.stringify(raw.timeout)}`);
    else timeoutMs = ms;
  }
  const lower = (names: string[] | undefined, key: string): string[] => {
    const out: string[] = [];
    for (const n of names ?? []) {
      const l = n.toLowerCase();
      if (unforwardable.has(l)) problems.push(`${where}.${key}: "${n}" frames the HTTP request and is never forwarded`);
      else out.push(l);
    }
    return out;
  };
  const httpHeaders = lower(raw.http_headers, 'http_headers');
  const emulatedHeaders = lower(raw.emulated_headers, 'emulated_headers');
  if (raw.grpc_metadata?.length) warnings.push(`${where}.grpc_metadata: Herald has no gRPC transport; ignored`);
  if (raw.binary_encoding)
    warnings.push(`${where}.binary_encoding: Herald speaks JSON only; requests carry data as JSON (b64 answers work)`);
  const staticHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw.http?.static_headers ?? {})) {
    if (unforwardable.has(k.toLowerCase())) problems.push(`${where}.http.static_headers: "${k}" cannot be set`);
    else staticHeaders[k] = v;
  }
  const tls = raw.http?.tls;
  let ca: string | undefined;
  if (tls) {
    unknownKeys(
      tls,
      ['enabled', 'server_ca_pem', 'insecure_skip_verify', 'cert_pem', 'key_pem', 'server_name'],
      `${where}.http.tls`,
      problems,
      warnings,
    );
    if (tls.insecure_skip_verify === true)
      problems.push(
        `${where}.http.tls.insecure_skip_verify: Herald always verifies the backend's certificate; trust a private CA with server_ca_pem (a PEM file) instead`,
      );
    if (tls.cert_pem || tls.key_pem || tls.server_name)
      warnings.push(`${where}.http.tls: client certificates and server_name are not supported by Herald; ignored`);
    if (tls.server_ca_pem && tls.enabled !== false)
      ca = readCa(tls.server_ca_pem, `${where}.http.tls.server_ca_pem`, problems);
  }
  const statusTransforms: StatusTransform[] = [];
  for (const [i, t] of (raw.http?.status_to_code_transforms ?? []).entries()) {
    if (!t.to_error && !t.to_disconnect) {
      problems.push(`${where}.http.status_to_code_transforms[${i}]: give to_error or to_disconnect`);
      continue;
    }
    statusTransforms.push({
      statusCode: t.status_code,
      toError: t.to_error
        ? { code: t.to_error.code, message: t.to_error.message ?? '', temporary: t.to_error.temporary ?? false }
        : undefined,
      toDisconnect: t.to_disconnect,
    });
  }
  if (problems.length > before) return undefined;
  return {
    name,
    endpoint,
    timeoutMs,
    httpHeaders,
    emulatedHeaders,
    staticHeaders,
    includeConnectionMeta: raw.include_connection_meta ?? false,
    ca,
    statusTransforms,
    maxInFlight: raw.max_in_flight ?? DEFAULT_PROXY_MAX_IN_FLIGHT,
    maxResponseBytes: raw.max_response_size ?? DEFAULT_PROXY_MAX_RESPONSE_BYTES,
  };
}

/** The proxy keys a namespace may carry, as Centrifugo v6 names them. */
export const namespaceProxyKeys = [
  'subscribe_proxy_enabled',
  'publish_proxy_enabled',
  'sub_refresh_proxy_enabled',
  'subscribe_proxy_name',
  'publish_proxy_name',
  'sub_refresh_proxy_name',
] as const;

/**
 * Reads and checks the proxy sections; adds a problem for every wrong value, an unknown proxy name, a namespace that
 * enables a proxy that is not configured, and TLS verification turned off.
 */
export function loadProxyConfig(
  sections: ProxyFileSections,
  namespaces: ReadonlyArray<readonly [where: string, ns: NamespaceOptions]>,
  problems: string[],
  warnings: string[],
): ProxyConfig {
  const config: ProxyConfig = {
    named: new Map(),
    rpcWithoutNamespace: { proxyEnabled: false, proxyName: '' },
    rpcNamespaces: new Map(),
  };

  const named = parse(z.array(namedProxySchema), sections.proxies, 'proxies', problems) ?? [];
  for (const [i, raw] of named.entries()) {
    const where = `proxies[${i}] ("${raw.name}")`;
    if (config.named.has(raw.name)) {
      problems.push(`${where}.name: proxy "${raw.name}" is defined twice`);
      continue;
    }
    if (raw.name === 'default') {
      problems.push(`${where}.name: "default" names the proxies of client.proxy, channel.proxy and rpc.proxy`);
      continue;
    }
    const e = endpointFrom(raw, raw.name, where, problems, warnings);
    if (e) config.named.set(raw.name, e);
  }

  const client = parse(
    z.looseObject({ connect: proxySchema.optional(), refresh: proxySchema.optional() }),
    sections.clientProxy,
    'client.proxy',
    problems,
  );
  unknownKeys(sections.clientProxy, ['connect', 'refresh'], 'client.proxy', problems, warnings);
  for (const kind of ['connect', 'refresh'] as const) {
    const raw = client?.[kind];
    if (!raw || raw.enabled !== true) {
      if (raw && raw.enabled === undefined && raw.endpoint)
        warnings.push(`client.proxy.${kind}: has an endpoint but not "enabled": true; not used`);
      continue;
    }
    config[kind] = endpointFrom(raw, 'default', `client.proxy.${kind}`, problems, warnings);
  }

  const channel = parse(
    z.looseObject({
      subscribe: proxySchema.optional(),
      publish: proxySchema.optional(),
      sub_refresh: proxySchema.optional(),
      shared_poll_refresh: proxySchema.optional(),
    }),
    sections.channelProxy,
    'channel.proxy',
    problems,
  );
  unknownKeys(
    sections.channelProxy,
    ['subscribe', 'publish', 'sub_refresh', 'shared_poll_refresh', 'subscribe_stream', 'cache_empty', 'state'],
    'channel.proxy',
    problems,
    warnings,
  );
  if (channel?.subscribe)
    config.subscribe = endpointFrom(channel.subscribe, 'default', 'channel.proxy.subscribe', problems, warnings);
  if (channel?.publish)
    config.publish = endpointFrom(channel.publish, 'default', 'channel.proxy.publish', problems, warnings);
  if (channel?.sub_refresh)
    config.subRefresh = endpointFrom(channel.sub_refresh, 'default', 'channel.proxy.sub_refresh', problems, warnings);
  if (channel?.shared_poll_refresh)
    config.sharedPollRefresh = endpointFrom(
      channel.shared_poll_refresh,
      'default',
      'channel.proxy.shared_poll_refresh',
      problems,
      warnings,
    );

  const checkRef = (
    where: string,
    enabled: boolean,
    name: string,
    fallback: ProxyEndpoint | undefined,
    what: string,
  ) => {
    if (!enabled) return;
    if (name === '' || name === 'default') {
      if (!fallback) problems.push(`${where}: ${what} is enabled but ${whatDefault(what)} is not configured`);
    } else if (!config.named.has(name)) {
      problems.push(
        `${where}: no proxy named "${name}" in proxies[] (known: ${[...config.named.keys()].join(', ') || 'none'})`,
      );
    }
  };
  for (const [where, ns] of namespaces) {
    checkRef(
      `${where}.subscribe_proxy_name`,
      ns.subscribe_proxy_enabled,
      ns.subscribe_proxy_name,
      config.subscribe,
      'subscribe_proxy_enabled',
    );
    checkRef(
      `${where}.publish_proxy_name`,
      ns.publish_proxy_enabled,
      ns.publish_proxy_name,
      config.publish,
      'publish_proxy_enabled',
    );
    checkRef(
      `${where}.sub_refresh_proxy_name`,
      ns.sub_refresh_proxy_enabled,
      ns.sub_refresh_proxy_name,
      config.subRefresh,
      'sub_refresh_proxy_enabled',
    );
  }

  const rpc = parse(rpcSchema, sections.rpc, 'rpc', problems);
  unknownKeys(
    sections.rpc,
    ['proxy', 'without_namespace', 'namespaces', 'namespace_boundary', 'ping'],
    'rpc',
    problems,
    warnings,
  );
  if (rpc?.proxy) config.rpc = endpointFrom(rpc.proxy, 'default', 'rpc.proxy', problems, warnings);
  const rpcNs = (raw: { proxy_enabled?: boolean; proxy_name?: string }, where: string): RpcNamespaceProxy => {
    unknownKeys(raw, [...Object.keys(rpcNamespaceShape), 'name'], where, problems, warnings);
    const r = { proxyEnabled: raw.proxy_enabled ?? false, proxyName: raw.proxy_name ?? '' };
    checkRef(`${where}.proxy_name`, r.proxyEnabled, r.proxyName, config.rpc, 'proxy_enabled');
    return r;
  };
  if (rpc?.without_namespace) config.rpcWithoutNamespace = rpcNs(rpc.without_namespace, 'rpc.without_namespace');
  for (const [i, raw] of (rpc?.namespaces ?? []).entries()) {
    const where = `rpc.namespaces[${i}] ("${raw.name}")`;
    if (config.rpcNamespaces.has(raw.name))
      problems.push(`${where}.name: rpc namespace "${raw.name}" is defined twice`);
    else config.rpcNamespaces.set(raw.name, rpcNs(raw, where));
  }
  return config;
}

function whatDefault(flag: string): string {
  switch (flag) {
    case 'subscribe_proxy_enabled':
      return 'channel.proxy.subscribe';
    case 'publish_proxy_enabled':
      return 'channel.proxy.publish';
    case 'sub_refresh_proxy_enabled':
      return 'channel.proxy.sub_refresh';
    default:
      return 'rpc.proxy';
  }
}

/** No proxies at all (createHerald without proxy sections). */
export function emptyProxyConfig(): ProxyConfig {
  return {
    named: new Map(),
    rpcWithoutNamespace: { proxyEnabled: false, proxyName: '' },
    rpcNamespaces: new Map(),
  };
}
