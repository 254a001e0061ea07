import { parseArgs } from 'node:util';
import { environmentWith } from './env-file.js';
import { SignJWT } from 'jose';
import { loadConfig, parseDurationMs } from '../config/index.js';

export const tokenUsage = `herald token --user ID [--ttl 1h] [--channels a,b] [--info JSON] [--secret S] [--channel CH]
             [--env-file FILE]
  Mints an HS256 connection token (or a subscription token with --channel) with the configured secret
  (HERALD_TOKEN_SECRET, else NEXTAUTH_SECRET, else client.token.hmac_secret_key in HERALD_CONFIG; --env-file: also
  from that file, e.g. herald init's herald.env). For development.`;

export async function token(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      user: { type: 'string' },
      ttl: { type: 'string' },
      channels: { type: 'string' },
      info: { type: 'string' },
      secret: { type: 'string' },
      channel: { type: 'string' },
      config: { type: 'string' },
      'env-file': { type: 'string' },
      audience: { type: 'string' },
      issuer: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(tokenUsage);
    return 0;
  }
  if (values.user === undefined) {
    console.error('herald token: --user is required (the user id, e.g. --user 42)\n' + tokenUsage);
    return 2;
  }
  const config = loadConfig({ env: environmentWith(values['env-file']), configFile: values.config });
  const secret = values.secret ?? config.token.hmacSecret;
  if (!secret) {
    console.error('herald token: no secret: set HERALD_TOKEN_SECRET (or NEXTAUTH_SECRET) or pass --secret');
    return 2;
  }
  const ttlMs = parseDurationMs(values.ttl ?? '1h');
  if (ttlMs === undefined || ttlMs <= 0) {
    console.error(`herald token: --ttl ${values.ttl}: expected a duration like 1h, 30m or 3600`);
    return 2;
  }
  const claims: Record<string, unknown> = {};
  if (values.channel) claims.channel = values.channel;
  if (values.channels)
    claims.channels = values.channels
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (values.info) {
    try {
      claims.info = JSON.parse(values.info);
    } catch {
      console.error('herald token: --info must be JSON, e.g. --info \'{"name":"Alice"}\'');
      return 2;
    }
  }
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(values.user)
    .setIssuedAt()
    .setExpirationTime(Math.floor((Date.now() + ttlMs) / 1000));
  const aud = values.audience ?? config.token.audience;
  const iss = values.issuer ?? config.token.issuer;
  if (aud) jwt = jwt.setAudience(aud);
  if (iss) jwt = jwt.setIssuer(iss);
  console.log(await jwt.sign(new TextEncoder().encode(secret)));
  return 0;
}
