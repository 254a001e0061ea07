/**
 * Step 5: subscribe to a temporary channel and get one publication back.
 *
 * The channel is `herald-doctor-<random>` in the default namespace (a namespaced name would need that namespace
 * configured). Subscribing is tried first as a plain client subscribe; when the namespace refuses it (103) and
 * the doctor knows the user and the local secret, it retries with a subscription token it mints (claims sub +
 * channel), which works whatever the namespace allows. When neither works the step is a warning, not a failure:
 * requiring subscription tokens is a valid setup. Publishing goes through the HTTP API when an API key is
 * known (it also proves the API and the socket reach the same engine), else through the socket's publish
 * command when the namespace allows it, else it is not tested.
 */
import type { Finding } from './finding.js';

export type SubscribeResult =
  | { ok: true; via: 'client' | 'token'; ms: number }
  | { ok: false; code: number; message: string; tokenTried: boolean; tokenMessage?: string }
  | { ok: false; close: { code: number; reason: string } }
  | { ok: false; timeout: true };

export type PublishResult =
  | { via: 'none'; reason: string }
  | { via: 'api' | 'client'; ok: true; deliveredMs: number; offset?: number }
  /** `foundAt`: the API address was not given but found by the doctor (how), so it may be another Herald. */
  | { via: 'api' | 'client'; ok: false; notDelivered: true; waitedMs: number; offset?: number; foundAt?: string }
  /** `guessed`: no --api-url was given and the address tried was the URL's own origin. */
  | { via: 'api'; ok: false; unreachable: string; apiUrl: string; guessed?: boolean }
  | { via: 'api'; ok: false; status: number; body: string; apiUrl: string; herald: boolean; guessed?: boolean }
  | { via: 'client'; ok: false; code: number; message: string }
  /**
   * Not tried: Herald answers through Next.js, whose origin is the app (its own /api routes), and Herald's own
   * address was not found (no rewrite for `path` in the routes manifest, no Herald on the `scanned` ports).
   */
  | { via: 'api'; ok: false; addressUnknown: { path: string; scanned: number[]; manifestLooked: boolean } };

export interface RoundTripObservation {
  channel: string;
  subscribe: SubscribeResult;
  publish?: PublishResult;
}

export function interpretRoundTrip(o: RoundTripObservation): Finding {
  const s = o.subscribe;
  const details: Record<string, unknown> = { channel: o.channel, subscribe: s, publish: o.publish ?? null };
  if (!s.ok) {
    if ('timeout' in s) {
      return {
        step: 'roundtrip',
        status: 'fail',
        code: 'subscribe_timeout',
        saw: `no reply to subscribe ${o.channel}`,
        means: 'The server stopped answering after connect.',
        fix: 'Check the server log.',
        details,
      };
    }
    if ('close' in s) {
      return {
        step: 'roundtrip',
        status: 'fail',
        code: 'subscribe_disconnected',
        saw: `Herald closed the connection with ${s.close.code} "${s.close.reason}" on subscribe`,
        means: 'The server ended the connection instead of answering the subscribe.',
        fix: 'See @herald/server/docs/codes.md for the close code.',
        details,
      };
    }
    if (s.code === 103) {
      return {
        step: 'roundtrip',
        status: 'warn',
        code: 'subscribe_not_allowed',
        saw:
          `subscribe to ${o.channel} refused with 103: ${s.message}` +
          (s.tokenMessage ? `; with a minted subscription token: ${s.tokenMessage}` : ''),
        means:
          'The default namespace does not let clients subscribe on their own: each subscription needs a subscription ' +
          'token from your app. That is a valid setup; the doctor just cannot test the round trip without one.',
        fix: s.tokenTried
          ? "Give the doctor the server's secret (HERALD_TOKEN_SECRET) so its subscription token verifies."
          : "Run with --user ID and HERALD_TOKEN_SECRET set to the server's secret (the doctor then mints a subscription " +
            'token), or, for development, allow it in the config file: {"channel":{"without_namespace":{"allow_subscribe_for_client":true}}}',
        details,
      };
    }
    if (s.code === 102) {
      return {
        step: 'roundtrip',
        status: 'fail',
        code: 'unknown_namespace',
        saw: `subscribe to ${o.channel} refused with 102: ${s.message}`,
        means: "The channel's namespace is not configured on this server.",
        fix: 'Add the namespace to channel.namespaces in the config file, or pass --channel without a namespace.',
        details,
      };
    }
    return {
      step: 'roundtrip',
      status: 'fail',
      code: 'subscribe_error',
      saw: `subscribe to ${o.channel} refused with ${s.code}: ${s.message}`,
      means: 'The server refused the subscription.',
      fix: 'See @herald/server/docs/codes.md for the code.',
      details,
    };
  }
  const subSaw = `subscribed to ${o.channel} in ${s.ms} ms${s.via === 'token' ? ' (with a minted subscription token)' : ''}`;
  const p = o.publish ?? { via: 'none' as const, reason: 'not attempted' };
  if (p.via === 'none') {
    return {
      step: 'roundtrip',
      status: 'pass',
      code: 'subscribe_ok',
      saw: `${subSaw}; publish not tested: ${p.reason}`,
      means: 'Pass --api-key (or set HERALD_API_KEY) to test delivery through the HTTP API too.',
      details,
    };
  }
  if (p.ok) {
    return {
      step: 'roundtrip',
      status: 'pass',
      code: 'round_trip_ok',
      saw: `${subSaw}; published through ${p.via === 'api' ? 'the HTTP API' : 'the socket'}, delivered in ${p.deliveredMs} ms`,
      details: { ...details, latencyMs: p.deliveredMs },
    };
  }
  if ('notDelivered' in p) {
    const found = p.foundAt !== undefined;
    return {
      step: 'roundtrip',
      status: found ? 'warn' : 'fail',
      code: 'publication_not_delivered',
      saw: `${subSaw}; the publish was accepted${p.offset !== undefined ? ` (offset ${p.offset})` : ''}${found ? ` by the Herald ${p.foundAt}` : ''} but nothing arrived in ${p.waitedMs} ms`,
      means:
        p.via === 'api'
          ? 'The HTTP API and the WebSocket reached different Herald nodes that share no engine (each memory engine is alone).' +
            (found
              ? ' The doctor found that API address itself: it may be another Herald than the one behind Next.js.'
              : '')
          : 'The server accepted the publication but did not deliver it to its own subscriber.',
      fix:
        p.via === 'api'
          ? (found ? 'Pass the address the rewrite points to with --api-url. If it is this one: ' : '') +
            'Run every node with HERALD_ENGINE=redis and the same REDIS_URL, or send the API call to the same node.'
          : 'Check the server log.',
      details,
    };
  }
  if ('addressUnknown' in p) {
    const a = p.addressUnknown;
    const looked = [
      'no --api-url, HERALD_API_URL or HERALD_URL',
      ...(a.manifestLooked ? [`no rewrite of ${a.path} in .next/routes-manifest.json here`] : []),
      a.scanned.length > 0 ? `no Herald on ports ${a.scanned.join(', ')}` : 'no port scan (--scan-ports none)',
    ];
    return {
      step: 'roundtrip',
      status: 'warn',
      code: 'api_address_unknown',
      saw: `${subSaw}; the HTTP API was not tried: Herald answers through Next.js, and its own address was not found (${looked.join('; ')})`,
      means:
        `Next.js routes only ${a.path} to Herald; its other paths, /api/publish among them, are the app's own, so the ` +
        "doctor does not post there. Herald's HTTP API is at the address the rewrite points to.",
      fix:
        `Pass the origin of the ${a.path} rewrite's destination in next.config, e.g. --api-url http://127.0.0.1:3002 ` +
        "(or set HERALD_URL), or run the doctor in the Next.js app's directory after next build / next dev so it reads the rewrite.",
      details,
    };
  }
  if ('unreachable' in p) {
    return {
      step: 'roundtrip',
      status: p.guessed ? 'warn' : 'fail',
      code: 'api_unreachable',
      saw: `${subSaw}; POST ${p.apiUrl}/api/publish failed: ${p.unreachable}`,
      means: 'The HTTP API is not reachable at this address.',
      fix: "Pass Herald's own address with --api-url (e.g. --api-url http://127.0.0.1:3002).",
      details,
    };
  }
  if ('status' in p) {
    if (p.herald && p.status === 401) {
      return {
        step: 'roundtrip',
        status: 'fail',
        code: 'api_key_wrong',
        saw: `${subSaw}; POST ${p.apiUrl}/api/publish answered 401: ${p.body.slice(0, 160)}`,
        means: "The API key given is not this server's HERALD_API_KEY.",
        fix: "Pass the server's key with --api-key, or set HERALD_API_KEY to the same value on both sides.",
        details,
      };
    }
    if (p.herald && p.status === 503) {
      return {
        step: 'roundtrip',
        status: 'fail',
        code: 'api_off',
        saw: `${subSaw}; POST ${p.apiUrl}/api/publish answered 503: ${p.body.slice(0, 160)}`,
        means: 'The server has no API key configured, so its HTTP API is off.',
        fix: "Set HERALD_API_KEY in Herald's environment and restart it.",
        details,
      };
    }
    return {
      step: 'roundtrip',
      status: !p.herald && p.guessed ? 'warn' : 'fail',
      code: p.herald ? 'api_error' : 'api_not_herald',
      saw: `${subSaw}; POST ${p.apiUrl}/api/publish answered ${p.status}: ${p.body.replace(/\s+/g, ' ').slice(0, 160)}`,
      means: p.herald
        ? 'Herald refused the publish.'
        : "That address is not Herald's HTTP API (a rewrite that covers only the WebSocket path?).",
      fix: "Pass Herald's own address with --api-url (e.g. --api-url http://127.0.0.1:3002).",
      details,
    };
  }
  return {
    step: 'roundtrip',
    status: 'pass',
    code: 'subscribe_ok',
    saw: `${subSaw}; publish from the socket refused with ${p.code} (${p.message})`,
    means: 'Pass --api-key (or set HERALD_API_KEY) to test delivery through the HTTP API.',
    details,
  };
}
