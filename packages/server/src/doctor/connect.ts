/**
 * Step 4: the protocol's connect command with the token. Herald names each refusal distinctly (auth/errors.ts):
 * 109 for an expired token, close 3500 with a reason for the rest, 101 when no token was sent. The doctor adds
 * what it can read in the token itself (claims are not secret) and, when it has the local secret, whether the
 * token verifies with it: "verifies here, refused there" means the two sides hold different secrets.
 */
import { compactVerify, decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import type { Finding } from './finding.js';
import type { WsEvent } from './ws-session.js';

export interface TokenFacts {
  source: 'token' | 'minted' | 'none';
  claims?: Record<string, unknown>;
  alg?: string;
  /** Whether the signature verifies with the local secret (HERALD_TOKEN_SECRET / NEXTAUTH_SECRET / config file). */
  localSignature?: 'ok' | 'bad' | 'no_secret';
  /** Where the local secret came from, for messages. */
  secretSource?: string;
}

export interface ConnectObservation {
  token: TokenFacts;
  /** The reply to connect, or the close that came instead. */
  event: WsEvent;
  timeoutMs: number;
  ms: number;
  now?: number;
}

/** Reads header and claims without verifying (enough to name what is wrong with a refused token). */
export function readToken(token: string): { claims?: Record<string, unknown>; alg?: string } {
  try {
    return { claims: decodeJwt(token) as Record<string, unknown>, alg: decodeProtectedHeader(token).alg };
  } catch {
    return {};
  }
}

/** Signature check only (exp, aud, iss are the server's to judge and are reported from the claims). */
export async function verifiesWith(token: string, secret: string): Promise<boolean> {
  try {
    await compactVerify(token, new TextEncoder().encode(secret));
    return true;
  } catch {
    return false;
  }
}

export async function mintToken(
  user: string,
  secret: string,
  opts: { audience?: string; issuer?: string; ttlSec?: number; channel?: string },
): Promise<string> {
  const claims: Record<string, unknown> = opts.channel ? { channel: opts.channel } : {};
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (opts.ttlSec ?? 300));
  if (opts.audience) jwt = jwt.setAudience(opts.audience);
  if (opts.issuer) jwt = jwt.setIssuer(opts.issuer);
  return jwt.sign(new TextEncoder().encode(secret));
}

function ago(seconds: number): string {
  const s = Math.abs(Math.round(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

function claimText(c: Record<string, unknown> | undefined, name: string): string {
  const v = c?.[name];
  return v === undefined ? '(none)' : JSON.stringify(v);
}

export function interpretConnect(o: ConnectObservation): Finding {
  const e = o.event;
  const c = o.token.claims;
  const now = (o.now ?? Date.now()) / 1000;
  const tokenDesc =
    o.token.source === 'minted'
      ? 'a token minted with --user and the local secret'
      : o.token.source === 'token'
        ? 'the token'
        : 'no token';
  const details: Record<string, unknown> = { token: o.token.source, claims: c ?? null, ms: o.ms };
  if (e.type === 'timeout') {
    return {
      step: 'connect',
      status: 'fail',
      code: 'connect_timeout',
      saw: `no reply to connect in ${o.timeoutMs} ms`,
      means:
        'The WebSocket opened but nothing answers the protocol: the server behind this path may not be Herald, ' +
        'or a token check waits on an unreachable JWKS URL.',
      fix: 'Check the server log; with HERALD_TOKEN_JWKS_URL, check that this URL answers from the server.',
      details,
    };
  }
  if (e.type === 'message') {
    const v = e.value;
    const err = v.error as { code?: number; message?: string } | undefined;
    if (!err && v.connect && typeof v.connect === 'object') {
      const r = v.connect as { client?: string; version?: string; ttl?: number; expires?: boolean };
      const who =
        c?.sub !== undefined ? ` as user ${JSON.stringify(c.sub)}` : o.token.source === 'none' ? ' anonymously' : '';
      return {
        step: 'connect',
        status: 'pass',
        code: 'connected',
        saw:
          `connected${who} with ${tokenDesc}: client ${r.client}, Herald ${r.version}` +
          (r.expires ? `, token valid ${ago(r.ttl ?? 0)} more` : '') +
          ` (${o.ms} ms)`,
        details: { ...details, reply: v.connect },
      };
    }
    const code = err?.code;
    if (code === 109) {
      const exp = typeof c?.exp === 'number' ? c.exp : undefined;
      return {
        step: 'connect',
        status: 'fail',
        code: 'token_expired',
        saw:
          `Herald answered error 109 (token expired)` +
          (exp !== undefined ? `: exp is ${new Date(exp * 1000).toISOString()}, ${ago(now - exp)} ago` : ''),
        means:
          "The token's exp is in the past. The SDK fetches a new token with getToken and retries; a fixed token " +
          'passed as `token` cannot be renewed.',
        fix:
          "Mint a fresh token for each connection (getToken calling your app's token route), with exp about 60 s ahead. " +
          'If the token was just minted, compare the clocks of the two machines.',
        details,
      };
    }
    if (code === 101) {
      return {
        step: 'connect',
        status: 'fail',
        code: 'token_required',
        saw: `Herald answered error 101: ${err?.message ?? 'unauthorized'}`,
        means: 'This server needs a connection token and none was sent.',
        fix:
          'Run the doctor with --token JWT (one your app mints), or --user ID with HERALD_TOKEN_SECRET set to the ' +
          "server's secret so the doctor mints one.",
        details,
      };
    }
    return {
      step: 'connect',
      status: 'fail',
      code: 'connect_error',
      saw: `Herald answered error ${code}: ${err?.message ?? JSON.stringify(v).slice(0, 200)}`,
      means:
        code === 100
          ? 'A temporary server-side failure (e.g. the JWKS URL does not answer).'
          : 'The server refused the connect command.',
      fix: 'See @herald/server/docs/codes.md for the code.',
      details,
    };
  }
  return interpretClose(e.code, e.reason, o, details, now);
}

function interpretClose(
  code: number,
  reason: string,
  o: ConnectObservation,
  details: Record<string, unknown>,
  now: number,
): Finding {
  const c = o.token.claims;
  const saw = `Herald closed the connection with ${code} "${reason}"`;
  const base = { step: 'connect' as const, status: 'fail' as const, details: { ...details, close: { code, reason } } };
  if (code === 3500 || /invalid token/.test(reason)) {
    if (/bad signature/.test(reason)) {
      const local =
        o.token.localSignature === 'ok'
          ? ` The token verifies with your local secret (${o.token.secretSource}), so Herald runs with another one.`
          : o.token.localSignature === 'bad'
            ? ` It does not verify with your local secret (${o.token.secretSource}) either.`
            : '';
      return {
        ...base,
        code: 'token_bad_signature',
        saw,
        means: `The token was signed with a different secret than this server's.${local}`,
        fix:
          "Use one secret on both sides: the app that mints tokens and Herald's HERALD_TOKEN_SECRET (NEXTAUTH_SECRET is " +
          'its fallback). Restart Herald after changing it.',
      };
    }
    if (/no exp/.test(reason)) {
      return {
        ...base,
        code: 'token_missing_exp',
        saw,
        means: 'The token has no exp claim; Herald refuses tokens that never expire (a leaked one would work forever).',
        fix:
          "Mint it with an expiry: new SignJWT({ sub }).setExpirationTime('60s') (jose), or exp: now + 60 in the claims. " +
          'To accept tokens without exp as Centrifugo does: HERALD_TOKEN_REQUIRE_EXP=false.',
      };
    }
    if (/audience/.test(reason)) {
      return {
        ...base,
        code: 'token_bad_audience',
        saw,
        means: `The token's aud is ${claimText(c, 'aud')}; Herald expects the value of its HERALD_TOKEN_AUDIENCE.`,
        fix: 'Mint the token with aud equal to HERALD_TOKEN_AUDIENCE (jose: .setAudience(...)), or change HERALD_TOKEN_AUDIENCE.',
      };
    }
    if (/issuer/.test(reason)) {
      return {
        ...base,
        code: 'token_bad_issuer',
        saw,
        means: `The token's iss is ${claimText(c, 'iss')}; Herald expects the value of its HERALD_TOKEN_ISSUER.`,
        fix: 'Mint the token with iss equal to HERALD_TOKEN_ISSUER (jose: .setIssuer(...)), or change HERALD_TOKEN_ISSUER.',
      };
    }
    if (/nbf/.test(reason)) {
      const nbf = typeof c?.nbf === 'number' ? c.nbf : undefined;
      return {
        ...base,
        code: 'token_not_yet_valid',
        saw,
        means: `The token's nbf is in the future${nbf !== undefined ? ` (${ago(nbf - now)} from now)` : ''}: the minting machine's clock runs ahead.`,
        fix: 'Synchronise the clocks (NTP), or mint without nbf.',
      };
    }
    if (/algorithm/.test(reason)) {
      return {
        ...base,
        code: 'token_alg_not_allowed',
        saw,
        means: `The token is signed with ${o.token.alg ?? 'an algorithm'} that the configured key does not allow (a secret takes HS256/384/512, a public key its own family).`,
        fix: 'Sign with HS256 and HERALD_TOKEN_SECRET, or configure the matching public key (HERALD_TOKEN_PUBLIC_KEY / HERALD_TOKEN_JWKS_URL).',
      };
    }
    if (/key id|kid/.test(reason)) {
      return {
        ...base,
        code: 'token_unknown_kid',
        saw,
        means: "The token's kid is not in the JWKS Herald fetched.",
        fix: 'Check that HERALD_TOKEN_JWKS_URL is the key set of the issuer that minted this token.',
      };
    }
    if (/no token key/.test(reason)) {
      return {
        ...base,
        code: 'server_no_key',
        saw,
        means: 'Herald has no key to check tokens with.',
        fix: "Set HERALD_TOKEN_SECRET (the secret your app signs tokens with) in Herald's environment and restart it.",
      };
    }
    if (/malformed/.test(reason)) {
      return {
        ...base,
        code: 'token_malformed',
        saw,
        means: 'What was sent is not a signed JWT (a session cookie, a "Bearer " prefix, quotes around it?).',
        fix: 'Send the compact JWT your token route returns, as is.',
      };
    }
    return {
      ...base,
      code: 'token_invalid',
      saw,
      means: 'Herald refused the token.',
      fix: 'See @herald/server/docs/auth.md for the reason.',
    };
  }
  if (code === 3504) {
    return {
      ...base,
      code: 'connection_limit',
      saw,
      means: 'This user has too many connections (HERALD_USER_CONNECTION_LIMIT).',
      fix: 'Raise HERALD_USER_CONNECTION_LIMIT or close other tabs.',
    };
  }
  if (code === 3506 || (code === 3501 && /text frame on a protobuf connection/.test(reason))) {
    return {
      ...base,
      code: 'inappropriate_protocol',
      saw,
      means:
        code === 3506
          ? 'Herald took this connection as JSON and got binary frames.'
          : 'The upgrade asked for the centrifuge-protobuf subprotocol, so Herald expected binary protobuf frames, and got JSON text. The doctor never asks for it: something in between (a proxy setting Sec-WebSocket-Protocol) did.',
      fix: 'Let the client choose its encoding: remove the Sec-WebSocket-Protocol header the proxy sets (the SDK sends it for its protobuf build).',
    };
  }
  return {
    ...base,
    code: 'disconnected',
    saw,
    means:
      code === 1006
        ? 'The connection dropped without a close frame: something between closes WebSockets, or the server crashed.'
        : 'The server closed the connection during connect.',
    fix:
      code === 1006
        ? 'Check proxy timeouts and the server log.'
        : 'See @herald/server/docs/codes.md for the close code.',
  };
}
