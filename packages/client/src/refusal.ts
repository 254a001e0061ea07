/**
 * Refusals after the socket is open: an error reply to subscribe, publish, presence or history, a subscription the
 * server ends, a subscription token that keeps expiring. Each becomes a typed `HeraldClientError` (code, the server's
 * message, and the fix for that code) and one console line. The codes are the Centrifugo protocol's, listed in
 * @herald/server/docs/codes.md; Herald's error messages already say what was refused, this adds what to change.
 */

/** What the page asked Herald for when it was refused. */
export type HeraldOperation = 'subscribe' | 'refresh' | 'publish' | 'presence' | 'history';

/** The names of the error reply codes, as in @herald/server/docs/codes.md. */
export const errorCodeNames: Readonly<Record<number, string>> = {
  100: 'internal',
  101: 'unauthorized',
  102: 'unknown channel',
  103: 'permission denied',
  104: 'method not found',
  105: 'already subscribed',
  106: 'limit exceeded',
  107: 'bad request',
  108: 'not available',
  109: 'token expired',
  110: 'expired',
  111: 'too many requests',
  112: 'unrecoverable position',
  113: 'concurrent pagination',
  150: 'proxy unavailable',
  151: 'proxy answer invalid',
  // Unsubscribe codes a subscription can end with (no resubscribe).
  2000: 'server unsubscribe',
};

/** The centrifuge SDK's own error codes (below 100): failures on this side of the socket, not replies from Herald. */
const sdkCodeNames: Readonly<Record<number, string>> = {
  0: 'no client yet',
  1: 'timeout',
  2: 'transport closed',
  3: 'client disconnected',
  4: 'client closed',
  7: 'subscription unsubscribed',
  8: 'subscription token source failed',
  11: 'connection closed',
  12: 'bad configuration',
};

const DOCS = '@herald/server/docs';

export interface HeraldClientErrorInit {
  operation: HeraldOperation;
  channel: string;
  code: number;
  /** The server's (or the SDK's) message text. */
  reason: string;
  fix: string;
  temporary?: boolean;
}

/**
 * A refusal or failure of one operation on one channel. `code` >= 100 is Herald's error reply (see
 * @herald/server/docs/codes.md), 2000 a server unsubscribe; below 100 the SDK's own (1 timeout, 3 client
 * disconnected, ...).
 */
export class HeraldClientError extends Error {
  override readonly name = 'HeraldClientError';
  readonly code: number;
  readonly operation: HeraldOperation;
  readonly channel: string;
  /** The server's message text as it arrived (or the SDK's). */
  readonly reason: string;
  /** What to change so that it works. */
  readonly fix: string;
  /** The SDK retries by itself (100, 111, 113, a first 109 with getToken). */
  readonly temporary: boolean;

  constructor(init: HeraldClientErrorInit) {
    super(headline(init.operation, init.channel, init.code, init.reason));
    this.code = init.code;
    this.operation = init.operation;
    this.channel = init.channel;
    this.reason = init.reason;
    this.fix = init.fix;
    this.temporary = init.temporary ?? false;
  }
}

function what(operation: HeraldOperation, channel: string): string {
  switch (operation) {
    case 'subscribe':
      return `the subscription to ${channel}`;
    case 'refresh':
      return `the renewal of the subscription to ${channel}`;
    case 'publish':
      return `a publish to ${channel}`;
    case 'presence':
      return `the presence of ${channel}`;
    case 'history':
      return `the history of ${channel}`;
  }
}

/** The server's text without a leading repeat of the code's name ("permission denied: x" -> "x"). */
function detailOf(code: number, reason: string): string {
  const name = errorCodeNames[code];
  let text = reason.trim();
  if (name !== undefined) {
    if (text.toLowerCase() === name || (code === 100 && text === 'internal server error')) return '';
    if (text.toLowerCase().startsWith(`${name}: `)) text = text.slice(name.length + 2);
  }
  return text;
}

function headline(operation: HeraldOperation, channel: string, code: number, reason: string): string {
  if (code === 2000) {
    return `Herald ended the subscription to ${channel} with 2000 (server unsubscribe)${reason ? `: ${reason}` : ''}`;
  }
  if (code < 100) {
    const name = sdkCodeNames[code];
    return `${capitalized(what(operation, channel))} failed in the client (${code}${name ? ` ${name}` : ''})${reason && reason !== name ? `: ${reason}` : ''}`;
  }
  const name = errorCodeNames[code] ?? 'error';
  const detail = detailOf(code, reason);
  return `Herald refused ${what(operation, channel)} with ${code} (${name})${detail ? `: ${detail}` : ''}`;
}

function capitalized(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** `chat:lobby` -> `chat`; no namespace for a name without `ns:` (Herald's `channel.without_namespace`). */
export function namespaceOf(channel: string): string | undefined {
  const i = channel.indexOf(':');
  return i > 0 ? channel.slice(0, i) : undefined;
}

function optionsPlace(channel: string): string {
  const ns = namespaceOf(channel);
  return ns === undefined
    ? 'channel.without_namespace in the server config'
    : `the "${ns}" namespace (channel.namespaces in the server config)`;
}

const grants: Record<'publish' | 'presence' | 'history', [string, string]> = {
  publish: ['allow_publish_for_subscriber', 'allow_publish_for_client'],
  presence: ['allow_presence_for_subscriber', 'allow_presence_for_client'],
  history: ['allow_history_for_subscriber', 'allow_history_for_client'],
};

/** What to change for this code on this operation; `reason` (the server's text) refines the 103 advice. */
export function fixFor(
  operation: HeraldOperation,
  channel: string,
  code: number,
  reason: string,
  url?: string,
): string {
  const ns = namespaceOf(channel);
  const place = optionsPlace(channel);
  const config = `${DOCS}/configuration.md`;
  switch (code) {
    case 100:
      return (
        `a temporary failure on the server (its engine, e.g. Redis, is unreachable)` +
        (operation === 'publish' ? '; the publication was not stored: publish again later' : '; the client retries') +
        `. Check Herald's /ready and its log (${DOCS}/codes.md)`
      );
    case 101:
      return `connect with a token: give the client a token route (tokenUrl) or getToken (${DOCS}/auth.md)`;
    case 102:
      return ns === undefined
        ? `fix the channel name (${config})`
        : `add namespace "${ns}" to the server's config, e.g. herald.config.json ` +
            `{"channel":{"namespaces":[{"name":"${ns}","allow_subscribe_for_client":true}]}} (or createHerald({ config })), ` +
            `and restart Herald (see ${config}); check with \`npx herald doctor ${url ? `${url} ` : ''}--channel ${channel}\``;
    case 103:
      return permissionFix(operation, channel, reason, place);
    case 104:
      return `this Herald does not know the command: use a Herald and an SDK of matching versions (${DOCS}/codes.md)`;
    case 105:
      return `this connection already has a subscription to ${channel}: unsubscribe first, or share it (HeraldClient.retain)`;
    case 106:
      return operation === 'subscribe'
        ? `this connection has more subscriptions than HERALD_CHANNEL_LIMIT allows (default 128): use fewer channels or raise it (${DOCS}/configuration.md)`
        : operation === 'presence'
          ? `the reply is larger than HERALD_MAX_REPLY_SIZE: use presence stats for counts (${DOCS}/configuration.md)`
          : `the reply is larger than HERALD_MAX_REPLY_SIZE: ask for fewer publications with limit and page with since (${DOCS}/configuration.md)`;
    case 107:
      return `the request itself is malformed (a channel name Herald does not accept, or data nested too deep); retrying fails the same way: fix the call (channel names: ${config})`;
    case 108:
      return operation === 'presence'
        ? `set "presence": true on ${place} (${config})`
        : operation === 'history'
          ? `set "history_size" and "history_ttl" on ${place} (${config})`
          : `this kind of subscription is not available in Herald (only stream subscriptions) (${DOCS}/codes.md)`;
    case 109:
      return operation === 'subscribe' || operation === 'refresh'
        ? `the subscription token has expired: give the subscription a getToken that mints a fresh token on each call (the SDK calls it again after 109); if it already does, compare the clocks of the app and Herald and the token's exp (${DOCS}/auth.md)`
        : `the connection token has expired: the client fetches a fresh one from its token route (${DOCS}/auth.md)`;
    case 110:
      return `expired (${DOCS}/codes.md)`;
    case 111:
      return `this connection sends more than HERALD_COMMAND_RATE commands per second: send fewer; the client retries subscribes (${config})`;
    case 112:
      return `the position to recover from no longer exists on the server: subscribe again without recovery and reload the page's state (${DOCS}/protocol.md)`;
    case 113:
      return `concurrent pagination; retry (${DOCS}/codes.md)`;
    case 150:
      return (
        `the app's proxy backend behind Herald did not answer in time, refused the connection or answered an error status` +
        (operation === 'subscribe' ? '; the client resubscribes with backoff' : '; try again later') +
        `. The operator checks the backend named in Herald's warning log line (${DOCS}/proxy.md)`
      );
    case 151:
      return `the app's proxy backend answered something Herald cannot use (not JSON, too large, or the wrong shape); retrying gives the same answer until the backend is fixed: its operator checks the field named in Herald's warning log line against the shapes in ${DOCS}/proxy.md`;
    case 2000:
      return `the server unsubscribed this client (the server API's unsubscribe, or a refused subscription token refresh); the client does not resubscribe by itself: remount the subscription when it is allowed again (${DOCS}/codes.md)`;
    default:
      return code < 100
        ? 'see the connection state and the [herald] connection diagnosis in the console'
        : `see ${DOCS}/codes.md`;
  }
}

function permissionFix(operation: HeraldOperation, channel: string, reason: string, place: string): string {
  const config = `${DOCS}/configuration.md`;
  if (/limited to other users/.test(reason)) {
    return `${channel} is a user-limited channel (name#user1,user2) that does not list this user: subscribe to a channel that names the signed-in user`;
  }
  if (/subscription token refused/.test(reason)) {
    return `mint the subscription token for this user (sub) and this channel (channel claim) with the secret Herald verifies (HERALD_TOKEN_SECRET) (${DOCS}/auth.md)`;
  }
  if (operation === 'subscribe' || operation === 'refresh') {
    if (/allow_subscribe_for_client/.test(reason)) {
      return `set "allow_subscribe_for_client": true on ${place} so that any signed-in user may subscribe (anonymous users also need "allow_subscribe_for_anonymous"), or give the subscription a subscription token through getToken (${config}, ${DOCS}/auth.md)`;
    }
    return `an onSubscribe hook on the server refused it (its message says why): change that hook, or the namespace's allow_* options (${config})`;
  }
  const [subscriber, client] = grants[operation];
  if (reason.includes(subscriber) || reason.includes(client)) {
    return `set "${subscriber}": true on ${place} (and subscribe to ${channel} first), or "${client}": true to let any client ${operation === 'publish' ? 'publish' : `read ${operation}`}${operation === 'publish' ? '; or publish from your server instead (herald.publish, POST /api/publish)' : ''} (${config})`;
  }
  return `${operation === 'publish' ? 'an onPublish hook' : 'a hook'} on the server refused it (its message says why): change that hook, or the namespace's allow_* options (${config})`;
}

/** The error for a server reply or an SDK error object (`{ code, message, temporary? }`). */
export function refusalOf(operation: HeraldOperation, channel: string, err: unknown, url?: string): HeraldClientError {
  if (err instanceof HeraldClientError) return err;
  const e = (err ?? {}) as { code?: unknown; message?: unknown; temporary?: unknown };
  const code = typeof e.code === 'number' ? e.code : 0;
  const reason = typeof e.message === 'string' ? e.message : String(err);
  return new HeraldClientError({
    operation,
    channel,
    code,
    reason,
    fix: fixFor(operation, channel, code, reason, url),
    temporary: e.temporary === true,
  });
}

/** The one console line for it: what was refused, the server's words, and the fix. */
export function refusalLine(e: HeraldClientError): string {
  // One line: each line trimmed, blank ones dropped (split rather than a regex: /\s*\n\s*/ backtracks).
  return `[herald] ${e.message}. Fix: ${e.fix}.`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
}
