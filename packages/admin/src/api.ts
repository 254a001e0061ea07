/** The admin endpoints of the node that served this page (same origin; the session cookie goes along). */

export interface ApiError {
  code: number;
  message: string;
}

export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The admin path: the page is served at <path>/, so the API is ./api relative to it. */
const base = new URL('api/', new URL('.', document.baseURI));

export async function post<T = unknown>(route: string, body: unknown = {}): Promise<T> {
  const res = await fetch(new URL(route, base), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  const text = await res.text();
  let parsed: { result?: T; error?: ApiError } & Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new AdminApiError(res.status, 0, `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  if (parsed.error) throw new AdminApiError(res.status, parsed.error.code, parsed.error.message);
  if (!res.ok) throw new AdminApiError(res.status, 0, `HTTP ${res.status}`);
  return (parsed.result ?? parsed) as T;
}

/** Runs one server API method (info, channels, presence, history, publish, disconnect, unsubscribe, ...). */
export function call<T = unknown>(method: string, params: unknown): Promise<T> {
  return post<T>(`call/${method}`, params);
}

export interface Publication {
  data: unknown;
  offset?: number;
  info?: { user?: string; client?: string };
  tags?: Record<string, string>;
}

export interface ClientEntry {
  user: string;
  client: string;
  conn_info?: unknown;
  chan_info?: unknown;
}

export interface Connection {
  client: string;
  user: string;
  node: string;
  transport: string;
  encoding: string;
  name: string;
  ip: string;
  subscriptions: string[];
  connected_at: number;
}
