/**
 * createTokenAuth: connection and subscription tokens -> credentials. Pure token logic (jose, node:crypto):
 * no sockets, no HTTP server; the only I/O is the JWKS fetch when a JWKS URL is configured.
 */
import { type ConnectionCredentials, connectionCredentialsFrom } from './connection-token.js';
import { TokenError } from './errors.js';
import { verifyJwt, type ClaimLimits, type JwtCheckOptions } from './jwt.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../protocol/json-depth.js';
import { KeyRing } from './keys.js';
import {
  type SubscriptionCredentials,
  type SubscriptionExpectation,
  subscriptionCredentialsFrom,
} from './subscription-token.js';

export interface TokenAuthOptions {
  /**
   * Shared secret for HS256/HS384/HS512 (HERALD_TOKEN_SECRET, falling back to NEXTAUTH_SECRET: the caller resolves
   * that). An empty string is refused at startup.
   */
  hmacSecret?: string;
  /**
   * SPKI PEM public key (see `loadPublicKey` for PEM-or-path). Its type fixes the algorithms: RSA -> RS256/384/512
   * and PS256/384/512, EC P-256/384/521 -> ES256/384/512, Ed25519 -> EdDSA.
   */
  publicKeyPem?: string;
  /** JSON Web Key Set URL, fetched with global fetch and cached; accepts every asymmetric algorithm above. */
  jwksUrl?: string;
  /** Minimum time between JWKS fetches caused by an unknown `kid`. @default 30_000 */
  jwksCooldownMs?: number;
  /** The JWKS is refetched after this age (the old keys stay in use if that fails). @default 600_000 */
  jwksCacheMaxAgeMs?: number;
  /** JWKS fetch timeout. @default 5_000 */
  jwksTimeoutMs?: number;
  /** Required `aud` (one of the token's audiences must equal it). @default undefined (not checked) */
  audience?: string;
  /** Required `iss`. @default undefined (not checked) */
  issuer?: string;
  /**
   * Refuse tokens without `exp` (reason `missing_exp`). Config defaults it to true; false restores Centrifugo's
   * rule that a token without `exp` never expires.
   */
  requireExp: boolean;
  /**
   * Leeway for `exp`, `nbf` and `expire_at`, in seconds. @default 5
   * Enough for the skew between the machine that mints tokens and this one (NTP keeps them within a second or so)
   * while tokens minted for ~60 s (the pattern next-auth maintainers recommend for sockets) stay short-lived.
   */
  clockToleranceSec?: number;
  /** Longest token read, in characters; longer input is refused as `malformed` before any parsing. @default 65_536 */
  maxTokenBytes?: number;
  /**
   * Bytes of the compact JSON of `info` / `b64info` (connection and subscription tokens, `subs` entries): what every
   * join, leave, publication and presence entry of the user carries. Larger is refused as `claim_too_large`.
   * @default 4096 (HERALD_MAX_INFO_SIZE)
   */
  maxInfoBytes?: number;
  /** Nesting depth of raw-JSON claims; deeper is `claim_too_large`. @default 64 (HERALD_MAX_JSON_DEPTH) */
  maxJsonDepth?: number;
}

export interface TokenAuth {
  /** Verifies a connection token. Throws only TokenError. */
  verifyConnectionToken(token: string): Promise<ConnectionCredentials>;
  /** Verifies a subscription token for `expect.channel` on a connection of `expect.user`. Throws only TokenError. */
  verifySubscriptionToken(token: string, expect: SubscriptionExpectation): Promise<SubscriptionCredentials>;
  /** Which key kinds are configured, for `herald doctor` and the startup log (no secret material). */
  describe(): { secret: boolean; publicKey?: string; jwksUrl?: string; algorithms: string[] };
}

export const DEFAULT_CLOCK_TOLERANCE_SEC = 5;
export const DEFAULT_MAX_TOKEN_BYTES = 65_536;
export const DEFAULT_MAX_INFO_BYTES = 4096;

/** Builds the verifier. Option mistakes (bad PEM, empty secret, bad URL, negative numbers) throw here, at startup. */
export function createTokenAuth(opts: TokenAuthOptions): TokenAuth {
  const ring = new KeyRing({
    hmacSecret: opts.hmacSecret,
    publicKeyPem: opts.publicKeyPem,
    jwksUrl: opts.jwksUrl,
    jwks: { cooldownMs: opts.jwksCooldownMs, cacheMaxAgeMs: opts.jwksCacheMaxAgeMs, timeoutMs: opts.jwksTimeoutMs },
  });
  const clockToleranceSec = opts.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC;
  if (!Number.isFinite(clockToleranceSec) || clockToleranceSec < 0) {
    throw new Error('clockToleranceSec must be a non-negative number of seconds');
  }
  const maxTokenBytes = opts.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES;
  if (!Number.isInteger(maxTokenBytes) || maxTokenBytes < 64) {
    throw new Error('maxTokenBytes must be an integer of at least 64');
  }
  if (typeof opts.requireExp !== 'boolean') throw new Error('requireExp must be true or false');
  const claimLimits: ClaimLimits = {
    maxBytes: opts.maxInfoBytes ?? DEFAULT_MAX_INFO_BYTES,
    maxDepth: opts.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH,
  };
  if (!Number.isInteger(claimLimits.maxBytes) || claimLimits.maxBytes! < 16)
    throw new Error('maxInfoBytes must be an integer of at least 16');
  if (!Number.isInteger(claimLimits.maxDepth) || claimLimits.maxDepth! < 1)
    throw new Error('maxJsonDepth must be a positive integer');
  for (const [name, value] of [
    ['audience', opts.audience],
    ['issuer', opts.issuer],
  ] as const) {
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      throw new Error(`${name} must be a non-empty string when set (HERALD_TOKEN_${name.toUpperCase()})`);
    }
  }
  const check: JwtCheckOptions = {
    audience: opts.audience,
    issuer: opts.issuer,
    requireExp: opts.requireExp,
    clockToleranceSec,
    maxTokenBytes,
  };

  return {
    async verifyConnectionToken(token) {
      try {
        return connectionCredentialsFrom(await verifyJwt(token, ring, check), clockToleranceSec, claimLimits);
      } catch (err) {
        throw asTokenError(err);
      }
    },
    async verifySubscriptionToken(token, expect) {
      try {
        return subscriptionCredentialsFrom(await verifyJwt(token, ring, check), expect, clockToleranceSec, claimLimits);
      } catch (err) {
        throw asTokenError(err);
      }
    },
    describe() {
      const out: ReturnType<TokenAuth['describe']> = { secret: ring.secret !== undefined, algorithms: ring.algorithms };
      if (ring.publicKey) out.publicKey = ring.publicKey.description;
      if (ring.jwks) out.jwksUrl = ring.jwks.url;
      return out;
    },
  };
}

/** The promise is that callers see TokenError and nothing else, whatever the input. */
function asTokenError(err: unknown): TokenError {
  if (err instanceof TokenError) return err;
  return new TokenError('malformed', 'the token could not be read');
}
