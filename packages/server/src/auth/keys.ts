/**
 * Key material for token verification, and which algorithms each kind of key may verify.
 *
 * Algorithm confusion is impossible by construction: the algorithm a token names in its header picks the key
 * *kind* (HS* -> the shared secret, anything else -> the public key or the JWKS), and a kind that is not
 * configured refuses the token before any crypto runs. An HS256 token "signed" with the RSA public key's PEM text
 * therefore meets `alg_not_allowed` when only a public key is configured, and `bad_signature` when a secret is
 * configured too (it is checked against the secret, never against the PEM).
 */
import { createPublicKey, type KeyObject, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, errors as joseErrors, type JWSHeaderParameters } from 'jose';
import { TokenError } from './errors.js';

export const HMAC_ALGORITHMS: readonly string[] = ['HS256', 'HS384', 'HS512'];

/** Every asymmetric JWS algorithm Herald verifies (the ones a JWKS key may carry). */
export const ASYMMETRIC_ALGORITHMS: readonly string[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];

/**
 * Accepts the value of HERALD_TOKEN_PUBLIC_KEY: PEM text, or a path to a PEM file. Env files often carry PEM on
 * one line with literal `\n`: those are turned back into newlines. Throws an Error that says what to fix.
 */
export function loadPublicKey(value: string, label = 'HERALD_TOKEN_PUBLIC_KEY'): string {
  const trimmed = value.trim();
  if (trimmed === '') throw new Error(`${label} is empty: set it to a PEM public key or to the path of a PEM file`);
  if (trimmed.startsWith('-----BEGIN')) return trimmed.replace(/\\n/g, '\n');
  let text: string;
  try {
    text = readFileSync(trimmed, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new Error(
      `${label} is neither PEM text (starting with -----BEGIN PUBLIC KEY-----) nor a readable file: ${trimmed} (${code})`,
    );
  }
  if (!text.includes('-----BEGIN')) throw new Error(`${label} points to ${trimmed}, which holds no PEM block`);
  return text.trim();
}

export interface PublicKeyInfo {
  key: KeyObject;
  /** The algorithms this key may verify, fixed from the key type (never from a token). */
  algorithms: readonly string[];
  /** Human name of the key type, for messages ("RSA 2048-bit", "EC P-256", "Ed25519"). */
  description: string;
}

const curveAlgorithm: Readonly<Record<string, { alg: string; name: string }>> = {
  prime256v1: { alg: 'ES256', name: 'P-256' },
  secp384r1: { alg: 'ES384', name: 'P-384' },
  secp521r1: { alg: 'ES512', name: 'P-521' },
};

/** Parses an SPKI (or PKCS#1 RSA) PEM public key and fixes its algorithms. Throws an Error that says what to fix. */
export function parsePublicKey(pem: string, label = 'HERALD_TOKEN_PUBLIC_KEY'): PublicKeyInfo {
  if (/PRIVATE KEY-----/.test(pem)) {
    throw new Error(`${label} holds a private key: give Herald only the public half (openssl pkey -pubout)`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error(`${label} is not a PEM public key that Node can read (expected -----BEGIN PUBLIC KEY-----)`);
  }
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  switch (type) {
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < 2048) throw new Error(`${label} is a ${bits}-bit RSA key; RS*/PS* need 2048 bits or more`);
      return {
        key,
        algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
        description: `RSA ${bits}-bit`,
      };
    }
    case 'ec': {
      const curve = curveAlgorithm[details.namedCurve ?? ''];
      if (!curve) {
        throw new Error(`${label} is an EC key on curve ${details.namedCurve ?? '?'}; use P-256, P-384 or P-521`);
      }
      return { key, algorithms: [curve.alg], description: `EC ${curve.name}` };
    }
    case 'ed25519':
      return { key, algorithms: ['EdDSA', 'Ed25519'], description: 'Ed25519' };
    default:
      throw new Error(
        `${label} is a ${type ?? 'unknown'} key; Herald verifies RSA (2048+ bits, not RSA-PSS-only keys), ` +
          'EC P-256/P-384/P-521 and Ed25519 keys',
      );
  }
}

export interface JwksOptions {
  /** Minimum time between two fetches caused by an unknown `kid`. @default 30_000 */
  cooldownMs?: number;
  /** Age after which the cached set is refetched on the next use; a failed refetch keeps the old keys. @default 600_000 */
  cacheMaxAgeMs?: number;
  /** Abort a fetch after this long. @default 5_000 */
  timeoutMs?: number;
}

/** The largest JWKS body Herald reads: real key sets are a few KB. */
const MAX_JWKS_BYTES = 512 * 1024;

type LocalSet = ReturnType<typeof createLocalJWKSet>;
/** jose's WebCrypto key type (the DOM lib is not loaded here, so it is named through jose). */
export type JwksKey = Awaited<ReturnType<LocalSet>>;

/**
 * A remote JSON Web Key Set fetched with global `fetch` and cached.
 * - An unknown `kid` triggers at most one fetch per cooldown (counted from the last fetch attempt), so a flood of
 *   tokens with made-up kids cannot turn Herald into a request amplifier against the key server.
 * - Concurrent lookups share one fetch.
 * - When the cache is old and the refetch fails, the old keys stay in use (the key server may be briefly down).
 */
export class JwksSource {
  readonly url: string;
  private readonly cooldownMs: number;
  private readonly cacheMaxAgeMs: number;
  private readonly timeoutMs: number;
  private local: LocalSet | undefined;
  private fetchedAt = 0;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | undefined;
  /** How many HTTP fetches were started (for metrics and tests). */
  fetches = 0;

  constructor(url: string, opts: JwksOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`HERALD_TOKEN_JWKS_URL is not a URL: ${url}`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new Error(`HERALD_TOKEN_JWKS_URL must be an http(s) URL, got ${parsed.protocol}`);
    }
    this.url = parsed.href;
    this.cooldownMs = checkDuration(opts.cooldownMs, 30_000, 'jwksCooldownMs');
    this.cacheMaxAgeMs = checkDuration(opts.cacheMaxAgeMs, 600_000, 'jwksCacheMaxAgeMs');
    this.timeoutMs = checkDuration(opts.timeoutMs, 5_000, 'jwksTimeoutMs');
  }

  /** The public key for a token header; throws TokenError `unknown_kid` or `jwks_unavailable`. */
  async getKey(header: JWSHeaderParameters): Promise<JwksKey> {
    const now = Date.now();
    if (!this.local) {
      await this.refresh();
    } else if (now - this.fetchedAt >= this.cacheMaxAgeMs && now - this.attemptedAt >= this.cooldownMs) {
      await this.refresh().catch(() => undefined); // stale keys beat no keys
    }
    try {
      return await this.pick(header);
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw this.explain(err, header);
      // Inside the cooldown, refuse without a request, unless a fetch is under way: then wait for its keys.
      if (!this.pending && Date.now() - this.attemptedAt < this.cooldownMs) throw this.explain(err, header);
    }
    await this.refresh(); // joins the fetch under way, if any
    try {
      return await this.pick(header);
    } catch (err) {
      throw this.explain(err, header);
    }
  }

  private async pick(header: JWSHeaderParameters): Promise<JwksKey> {
    const local = this.local;
    if (!local) throw new TokenError('jwks_unavailable', 'the token key set (JWKS) has not been fetched yet; retry');
    return local(header);
  }

  private explain(err: unknown, header: JWSHeaderParameters): TokenError {
    if (err instanceof TokenError) return err;
    const kid = typeof header.kid === 'string' ? ` "${header.kid.slice(0, 64)}"` : '';
    if (err instanceof joseErrors.JWKSMultipleMatchingKeys) {
      return new TokenError(
        'unknown_kid',
        `the token has no kid and several keys of the key set (JWKS) fit ${String(header.alg)}: ` +
          "put the signing key's kid in the token header",
      );
    }
    if (err instanceof joseErrors.JWKSNoMatchingKey) {
      return new TokenError(
        'unknown_kid',
        header.kid === undefined
          ? `no key in the key set (JWKS) fits ${String(header.alg)}: sign with a key published in the JWKS`
          : `no key with kid${kid} for ${String(header.alg)} in the key set (JWKS): sign with a published key, ` +
              'or publish the new key (Herald refetches the set at most once per cooldown)',
      );
    }
    return new TokenError('unknown_kid', 'no usable key in the key set (JWKS) for this token');
  }

  /** Fetches the set now (one fetch shared by concurrent callers); throws TokenError `jwks_unavailable`. */
  refresh(): Promise<void> {
    if (this.pending) return this.pending;
    this.attemptedAt = Date.now();
    this.fetches++;
    const run = this.load().finally(() => {
      this.pending = undefined;
    });
    this.pending = run;
    return run;
  }

  private async load(): Promise<void> {
    let json: unknown;
    try {
      const res = await fetch(this.url, {
        headers: { accept: 'application/jwk-set+json, application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        throw new Error(`HTTP ${res.status}, expected 200`);
      }
      const declared = Number(res.headers.get('content-length') ?? 0);
      if (declared > MAX_JWKS_BYTES) {
        await res.body?.cancel().catch(() => undefined);
        throw new Error(`body larger than ${MAX_JWKS_BYTES} bytes`);
      }
      const text = await res.text();
      if (text.length > MAX_JWKS_BYTES) throw new Error(`body larger than ${MAX_JWKS_BYTES} bytes`);
      json = JSON.parse(text);
      this.local = createLocalJWKSet(json as Parameters<typeof createLocalJWKSet>[0]);
      this.fetchedAt = Date.now();
    } catch (err) {
      const why = err instanceof Error ? err.message.slice(0, 200) : 'unknown error';
      throw new TokenError(
        'jwks_unavailable',
        `the token key set (JWKS) could not be fetched (${why}); the client retries, and the operator should check ` +
          'HERALD_TOKEN_JWKS_URL',
      );
    }
  }
}

function checkDuration(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number of milliseconds`);
  return value;
}

type CryptoKey = webcrypto.CryptoKey;

/** Which key verifies a token, chosen from the header's `alg` (and `kid` for a JWKS). */
export type KeyChoice =
  | { kind: 'secret'; key: CryptoKey }
  | { kind: 'public_key'; key: KeyObject; description: string }
  | { kind: 'jwks'; key: JwksKey; kid: string | undefined };

export interface KeyRingOptions {
  hmacSecret?: string;
  publicKeyPem?: string;
  jwksUrl?: string;
  jwks?: JwksOptions;
}

/** Everything this server may verify tokens with. Built once at startup; option errors throw there. */
export class KeyRing {
  readonly secret: Uint8Array | undefined;
  readonly publicKey: PublicKeyInfo | undefined;
  readonly jwks: JwksSource | undefined;
  /** The secret imported once per HMAC algorithm: importing it for every token was most of a connect's cost. */
  private readonly hmacKeys = new Map<string, Promise<CryptoKey>>();

  constructor(opts: KeyRingOptions) {
    if (opts.hmacSecret !== undefined) {
      if (typeof opts.hmacSecret !== 'string' || opts.hmacSecret === '') {
        throw new Error('the token secret (HERALD_TOKEN_SECRET or NEXTAUTH_SECRET) is empty: set it or unset it');
      }
      this.secret = new TextEncoder().encode(opts.hmacSecret);
    }
    if (opts.publicKeyPem !== undefined) this.publicKey = parsePublicKey(opts.publicKeyPem);
    if (opts.jwksUrl !== undefined) this.jwks = new JwksSource(opts.jwksUrl, opts.jwks);
  }

  get configured(): boolean {
    return this.secret !== undefined || this.publicKey !== undefined || this.jwks !== undefined;
  }

  /** Every algorithm some configured key may verify. */
  get algorithms(): string[] {
    const out: string[] = [];
    if (this.secret) out.push(...HMAC_ALGORITHMS);
    if (this.jwks) out.push(...ASYMMETRIC_ALGORITHMS);
    else if (this.publicKey) out.push(...this.publicKey.algorithms);
    return out;
  }

  private hmacKey(alg: string, secret: Uint8Array): Promise<CryptoKey> {
    let key = this.hmacKeys.get(alg);
    if (!key) {
      const hash = `SHA-${alg.slice(2)}`;
      key = webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash }, false, ['verify']);
      this.hmacKeys.set(alg, key);
    }
    return key;
  }

  /** Picks the key for `alg`; throws TokenError `alg_not_allowed`, `unknown_kid` or `jwks_unavailable`. */
  async choose(header: JWSHeaderParameters & { alg: string }): Promise<KeyChoice> {
    const { alg } = header;
    if (HMAC_ALGORITHMS.includes(alg)) {
      if (this.secret) return { kind: 'secret', key: await this.hmacKey(alg, this.secret) };
      throw new TokenError(
        'alg_not_allowed',
        `the token is signed with ${alg} (a shared secret) but this server verifies tokens with a public key: ` +
          `sign with the matching private key (${this.algorithms.join(', ')})`,
      );
    }
    if (!ASYMMETRIC_ALGORITHMS.includes(alg)) {
      throw new TokenError(
        'alg_not_allowed',
        `the token's algorithm is not allowed; this server accepts ${this.algorithms.join(', ')}`,
      );
    }
    const pk = this.publicKey;
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    if (pk && pk.algorithms.includes(alg) && (!this.jwks || kid === undefined)) {
      return { kind: 'public_key', key: pk.key, description: pk.description };
    }
    if (this.jwks) return { kind: 'jwks', key: await this.jwks.getKey(header), kid };
    if (pk) {
      throw new TokenError(
        'alg_not_allowed',
        `the token is signed with ${alg} but the configured public key (${pk.description}) verifies only ` +
          `${pk.algorithms.join(', ')}: sign with the matching private key`,
      );
    }
    throw new TokenError(
      'alg_not_allowed',
      `the token is signed with ${alg} (a key pair) but this server only has a shared secret: sign with HS256 ` +
        'and the secret, or configure HERALD_TOKEN_PUBLIC_KEY / HERALD_TOKEN_JWKS_URL',
    );
  }
}
