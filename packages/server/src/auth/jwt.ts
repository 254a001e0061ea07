/**
 * Signed-JWT verification shared by connection and subscription tokens: cheap structural checks first (so junk
 * is refused before any crypto or large JSON parse), then the key chosen from the configured key kind, then
 * jose's signature and registered-claim checks, every failure turned into a TokenError with a stable reason.
 *
 * Claims come from JSON.parse inside jose. They are read with `Object.hasOwn` and copied field by field into
 * fresh objects, never merged, so `__proto__` or `constructor` keys in a token stay plain data.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWSHeaderParameters } from 'jose';
import { DEFAULT_MAX_JSON_DEPTH, jsonDepthProblem, jsonTextDepth } from '../protocol/json-depth.js';
import { TokenError } from './errors.js';
import type { KeyChoice, KeyRing } from './keys.js';

export interface JwtCheckOptions {
  audience?: string;
  issuer?: string;
  requireExp: boolean;
  clockToleranceSec: number;
  maxTokenBytes: number;
}

export type Claims = Readonly<Record<string, unknown>>;

const BASE64URL = /^[A-Za-z0-9_-]*$/;
/** A JOSE header is a few dozen bytes; anything far larger is junk. */
const MAX_HEADER_CHARS = 2048;

function malformed(what: string): TokenError {
  return new TokenError('malformed', what);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An own property of parsed JSON, never one reached through the prototype chain. */
export function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** Decodes and checks the header without trusting it for anything but choosing a key. */
function parseHeader(token: string, maxTokenBytes: number): ParsedHeader {
  if (token.length === 0) throw malformed('the token is empty: pass the JWT your backend minted');
  if (token.length > maxTokenBytes) {
    throw malformed(`the token is ${token.length} characters, more than the ${maxTokenBytes} this server reads`);
  }
  if (/^bearer\s/i.test(token)) throw malformed('remove the "Bearer " prefix: pass the JWT alone');
  const parts = token.split('.');
  if (parts.length === 5) {
    throw malformed(
      'this is an encrypted token (JWE), such as a NextAuth session cookie; Herald needs a signed JWT: ' +
        'mint one on your server (HS256 with the shared secret)',
    );
  }
  const [h, p, s] = parts;
  if (parts.length !== 3 || h === undefined || p === undefined || s === undefined) {
    throw malformed('not a JWT: expected three base64url parts separated by dots');
  }
  if (!BASE64URL.test(h) || !BASE64URL.test(p) || !BASE64URL.test(s)) {
    throw malformed('not a JWT: a part holds characters outside base64url (whitespace or quotes around the token?)');
  }
  if (h.length === 0 || h.length > MAX_HEADER_CHARS) throw malformed('not a JWT: the header part is empty or too long');
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  } catch {
    throw malformed('not a JWT: the header is not base64url-encoded JSON');
  }
  if (!isPlainObject(header)) throw malformed('not a JWT: the header is not a JSON object');
  const alg = own(header, 'alg');
  if (typeof alg !== 'string' || alg === '') throw malformed('not a JWT: the header has no "alg"');
  if (alg.toLowerCase() === 'none' || s === '') {
    throw new TokenError(
      'alg_not_allowed',
      'the token is unsigned (alg "none" or an empty signature): sign it with the shared secret or your private key',
      'invalid token: unsigned token (alg none)',
    );
  }
  // The signature's text must be the one encoding of its bytes: base64url leaves unused bits in the last character,
  // and a decoder that ignores them would accept several texts for one token (a token that is not the one issued).
  if (Buffer.from(s, 'base64url').toString('base64url') !== s) {
    throw malformed('not a JWT: the signature part is not canonical base64url (the token was altered)');
  }
  const kid = own(header, 'kid');
  if (kid !== undefined && typeof kid !== 'string') throw malformed('not a JWT: "kid" in the header is not a string');
  // Only the fields key selection needs; jose parses the header again itself for verification.
  const out: ParsedHeader = kid === undefined ? { alg } : { alg, kid };
  // Extensions (crit, unencoded payloads) are left to jose; the HMAC fast path takes only plain headers.
  if (!Object.hasOwn(header, 'crit') && !Object.hasOwn(header, 'b64')) out.plain = true;
  return out;
}

type ParsedHeader = JWSHeaderParameters & { alg: string; plain?: boolean };

const HMAC_HASH: Readonly<Record<string, string>> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/**
 * HS256/384/512 with a plain header, verified synchronously with node:crypto. jose's WebCrypto path costs a key
 * import and a thread-pool round trip per token, which was the largest part of accepting a connection. The claim
 * checks are jose's, reported with jose's own error classes so both paths fail with the same TokenError.
 */
function verifyHmacFast(token: string, alg: string, secret: Uint8Array, opts: JwtCheckOptions): Claims {
  const hash = HMAC_HASH[alg]!;
  const lastDot = token.lastIndexOf('.');
  const expected = createHmac(hash, secret).update(token.slice(0, lastDot)).digest();
  const given = Buffer.from(token.slice(lastDot + 1), 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new joseErrors.JWSSignatureVerificationFailed();
  }
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(token.slice(token.indexOf('.') + 1, lastDot), 'base64url').toString('utf8'));
  } catch {
    throw new joseErrors.JWTInvalid('JWT Claims Set must be a top-level JSON object');
  }
  if (!isPlainObject(payload)) throw new joseErrors.JWTInvalid('JWT Claims Set must be a top-level JSON object');
  checkRegisteredClaims(payload, opts);
  return payload;
}

/** The registered-claim rules of jose's jwtVerify with our options (same order, same error classes). */
function checkRegisteredClaims(p: Record<string, unknown>, opts: JwtCheckOptions): void {
  const fail = (msg: string, claim: string, reason: string) =>
    new joseErrors.JWTClaimValidationFailed(msg, p, claim, reason);
  const required = opts.requireExp ? ['exp'] : [];
  if (opts.issuer !== undefined) required.push('iss');
  if (opts.audience !== undefined) required.push('aud');
  for (const claim of required)
    if (!Object.hasOwn(p, claim)) throw fail(`missing required "${claim}" claim`, claim, 'missing');
  if (opts.issuer !== undefined && own(p, 'iss') !== opts.issuer)
    throw fail('unexpected "iss" claim value', 'iss', 'check_failed');
  if (opts.audience !== undefined) {
    const aud = own(p, 'aud');
    const ok = typeof aud === 'string' ? aud === opts.audience : Array.isArray(aud) && aud.includes(opts.audience);
    if (!ok) throw fail('unexpected "aud" claim value', 'aud', 'check_failed');
  }
  const now = Math.floor(Date.now() / 1000);
  const tolerance = opts.clockToleranceSec;
  const iat = own(p, 'iat');
  if (iat !== undefined && typeof iat !== 'number') throw fail('"iat" claim must be a number', 'iat', 'invalid');
  const nbf = own(p, 'nbf');
  if (nbf !== undefined) {
    if (typeof nbf !== 'number') throw fail('"nbf" claim must be a number', 'nbf', 'invalid');
    if (nbf > now + tolerance) throw fail('"nbf" claim timestamp check failed', 'nbf', 'check_failed');
  }
  const exp = own(p, 'exp');
  if (exp !== undefined) {
    if (typeof exp !== 'number') throw fail('"exp" claim must be a number', 'exp', 'invalid');
    if (exp <= now - tolerance)
      throw new joseErrors.JWTExpired('"exp" claim timestamp check failed', p, 'exp', 'check_failed');
  }
}

/** Which kind of key refused a token (a KeyChoice, or the HMAC fast path, which has no CryptoKey). */
type FailureContext = { kind: 'secret' } | Exclude<KeyChoice, { kind: 'secret' }>;

function badSignature(choice: FailureContext): TokenError {
  switch (choice.kind) {
    case 'secret':
      return new TokenError(
        'bad_signature',
        "the signature does not match: the token was signed with a different secret than this server's " +
          '(HERALD_TOKEN_SECRET, or NEXTAUTH_SECRET when that is unset); use the same secret where tokens are minted',
        "invalid token: bad signature (signed with a different secret than this server's)",
      );
    case 'public_key':
      return new TokenError(
        'bad_signature',
        `the signature does not match: the token was signed with a different key than the one whose public half ` +
          `this server has (${choice.description}, HERALD_TOKEN_PUBLIC_KEY); sign with the matching private key`,
        "invalid token: bad signature (signed with a different key than this server's)",
      );
    case 'jwks':
      return new TokenError(
        'bad_signature',
        `the signature does not match the key set (JWKS) key${choice.kid === undefined ? '' : ` with kid "${choice.kid.slice(0, 64)}"`}: ` +
          'the token was signed with a different key; sign with the private key of the published kid',
        'invalid token: bad signature (signed with a different key than the JWKS one)',
      );
  }
}

function isoTime(sec: unknown): string {
  return typeof sec === 'number' && Number.isFinite(sec) ? new Date(sec * 1000).toISOString() : 'an unknown time';
}

function claimFailure(err: joseErrors.JWTClaimValidationFailed, opts: JwtCheckOptions): TokenError {
  const { claim, reason } = err;
  if (reason === 'invalid') return malformed(`the "${claim}" claim must be a number of seconds since the epoch`);
  switch (claim) {
    case 'exp':
      return new TokenError(
        'missing_exp',
        'the token has no exp claim and this server requires one: mint tokens with a short lifetime and give the ' +
          'client a getToken to refresh them (or set HERALD_TOKEN_REQUIRE_EXP=false for tokens that never expire)',
      );
    case 'nbf':
      return new TokenError(
        'not_yet_valid',
        `the token is not valid before ${isoTime(own(err.payload, 'nbf'))} (nbf): check the clocks of the ` +
          'machine that mints tokens and of this server',
      );
    case 'aud':
      return new TokenError(
        'bad_audience',
        reason === 'missing'
          ? `the token has no aud claim; this server expects aud "${opts.audience ?? ''}" (HERALD_TOKEN_AUDIENCE)`
          : `the token's audience (aud) is not "${opts.audience ?? ''}": mint it with that aud or change HERALD_TOKEN_AUDIENCE`,
      );
    case 'iss':
      return new TokenError(
        'bad_issuer',
        reason === 'missing'
          ? `the token has no iss claim; this server expects iss "${opts.issuer ?? ''}" (HERALD_TOKEN_ISSUER)`
          : `the token's issuer (iss) is not "${opts.issuer ?? ''}": mint it with that iss or change HERALD_TOKEN_ISSUER`,
      );
    default:
      return malformed(`the token's "${claim}" claim was refused`);
  }
}

function describeFailure(err: unknown, choice: FailureContext, opts: JwtCheckOptions): TokenError {
  if (err instanceof TokenError) return err;
  if (err instanceof joseErrors.JWTExpired) {
    return new TokenError(
      'expired',
      `the token expired at ${isoTime(own(err.payload, 'exp'))}: fetch a fresh one (the SDK calls getToken on error 109)`,
    );
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) return claimFailure(err, opts);
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return badSignature(choice);
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return new TokenError('alg_not_allowed', "the token's algorithm is not allowed for the configured key");
  }
  if (err instanceof joseErrors.JOSEError) return malformed(`not a valid JWT (${err.message.slice(0, 160)})`);
  // A TypeError from key preparation (a JWKS key too weak for its alg, say) or anything unforeseen: the token cannot
  // be verified. Only the message travels; no stack leaves this module.
  const why = err instanceof Error ? err.message.slice(0, 160) : 'unknown error';
  return malformed(`the token could not be verified (${why})`);
}

/**
 * Verifies a compact JWS and its registered claims (exp, nbf, aud, iss). Returns the claims set as parsed by jose;
 * callers read it with `own()` and copy what they need. Throws only TokenError.
 */
export async function verifyJwt(token: unknown, ring: KeyRing, opts: JwtCheckOptions): Promise<Claims> {
  if (typeof token !== 'string') throw malformed('the token is not a string');
  if (!ring.configured) {
    throw new TokenError(
      'no_key_configured',
      'this server has no token key configured: set HERALD_TOKEN_SECRET (or NEXTAUTH_SECRET), ' +
        'HERALD_TOKEN_PUBLIC_KEY or HERALD_TOKEN_JWKS_URL',
    );
  }
  const header = parseHeader(token, opts.maxTokenBytes);
  let choice: KeyChoice | undefined;
  try {
    if (header.plain && ring.secret && Object.hasOwn(HMAC_HASH, header.alg)) {
      try {
        return verifyHmacFast(token, header.alg, ring.secret, opts);
      } catch (err) {
        throw describeFailure(err, { kind: 'secret' }, opts);
      }
    }
    choice = await ring.choose(header);
    const { payload } = await jwtVerify(token, choice.key, {
      algorithms: [header.alg],
      audience: opts.audience,
      issuer: opts.issuer,
      clockTolerance: opts.clockToleranceSec,
      requiredClaims: opts.requireExp ? ['exp'] : [],
    });
    return payload as Claims;
  } catch (err) {
    if (err instanceof TokenError) throw err;
    if (!choice) throw malformed('the token could not be verified');
    throw describeFailure(err, choice, opts);
  }
}

// ---- claim readers shared by both token kinds ----

/** `sub`: a string, '' when absent (Centrifugo's anonymous user). */
export function subjectOf(claims: Claims): string {
  const sub = own(claims, 'sub');
  if (sub === undefined) return '';
  if (typeof sub !== 'string') throw malformed('the "sub" claim must be a string (the user id)');
  return sub;
}

/** An optional string claim. */
export function optionalString(claims: Claims, key: string): string | undefined {
  const v = own(claims, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw malformed(`the "${key}" claim must be a string`);
  return v;
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Bounds on a raw-JSON claim (`info`, `b64info`, `subs` entries): bytes of its compact JSON, and nesting. */
export interface ClaimLimits {
  /** Bytes of the compact JSON text (HERALD_MAX_INFO_SIZE); unbounded when absent. */
  maxBytes?: number;
  /** Nesting depth (HERALD_MAX_JSON_DEPTH). @default DEFAULT_MAX_JSON_DEPTH */
  maxDepth?: number;
}

/**
 * JSON text for a raw-JSON field carried on the wire (`info`, `data`): from `<key>` (any JSON value, serialized
 * again) or `b64<key>` (base64 of JSON text; it wins when both are present, as in Centrifugo). Herald speaks the
 * JSON protocol, so base64 content must be JSON text too. Either way the result is compact single-line JSON,
 * serialized here once: it is embedded raw in join/leave pushes, publications and history replies, where a newline
 * (a pretty-printed `b64info`) would split the frame and make the SDK reject it. Too large or too deep: refused
 * as `claim_too_large` (3500).
 */
export function jsonTextOf(
  obj: Record<string, unknown>,
  key: string,
  where = 'claim',
  limits: ClaimLimits = {},
): string | undefined {
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const b64 = own(obj, `b64${key}`);
  let value: unknown;
  let name = key;
  if (b64 !== undefined && b64 !== '') {
    name = `b64${key}`;
    if (typeof b64 !== 'string' || !BASE64.test(b64)) throw malformed(`the "b64${key}" ${where} must be base64 text`);
    let text: string;
    try {
      text = strictUtf8.decode(Buffer.from(b64, 'base64'));
    } catch {
      throw malformed(`the "b64${key}" ${where} must be base64 of JSON text (Herald speaks the JSON protocol)`);
    }
    if (jsonTextDepth(text, maxDepth) > maxDepth)
      throw tooLarge(`the "${name}" ${where} is nested deeper than ${maxDepth} levels (HERALD_MAX_JSON_DEPTH)`);
    try {
      value = JSON.parse(text);
    } catch {
      throw malformed(`the "b64${key}" ${where} must be base64 of JSON text (Herald speaks the JSON protocol)`);
    }
  } else {
    value = own(obj, key);
    if (value === undefined || value === null) return undefined;
    if (jsonDepthProblem(value, maxDepth))
      throw tooLarge(`the "${name}" ${where} is nested deeper than ${maxDepth} levels (HERALD_MAX_JSON_DEPTH)`);
  }
  const compact = JSON.stringify(value);
  if (limits.maxBytes !== undefined) {
    const bytes = Buffer.byteLength(compact, 'utf8');
    if (bytes > limits.maxBytes) {
      throw tooLarge(
        `the "${name}" ${where} is ${bytes} bytes of JSON, more than the ${limits.maxBytes} allowed (HERALD_MAX_INFO_SIZE): keep in it only what other clients need to see`,
      );
    }
  }
  return compact;
}

function tooLarge(what: string): TokenError {
  return new TokenError('claim_too_large', what);
}

/**
 * When the connection (or subscription) expires, in seconds since the epoch; undefined = never.
 * Centrifugo's `expire_at` overrides `exp` when present (0 = never expires); an `expire_at` already past is
 * answered like an expired token, so the SDK fetches a fresh one.
 */
export function expireAtOf(claims: Claims, clockToleranceSec: number): number | undefined {
  const expireAt = own(claims, 'expire_at');
  if (expireAt !== undefined) {
    if (typeof expireAt !== 'number' || !Number.isFinite(expireAt) || expireAt < 0) {
      throw malformed('the "expire_at" claim must be a number of seconds since the epoch (0 = never expires)');
    }
    if (expireAt === 0) return undefined;
    if (expireAt <= Date.now() / 1000 - clockToleranceSec) {
      throw new TokenError(
        'expired',
        `the token's expire_at (${isoTime(expireAt)}) is past: fetch a fresh token (the SDK calls getToken on error 109)`,
      );
    }
    return expireAt;
  }
  const exp = own(claims, 'exp');
  return typeof exp === 'number' ? exp : undefined;
}
