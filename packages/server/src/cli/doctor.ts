import { parseArgs } from 'node:util';
import { environmentWith } from './env-file.js';
import { loadConfig, parseDurationMs } from '../config/index.js';
import { renderFinding, renderHeader, renderJson, renderSummary } from '../doctor/render.js';
import { parseTarget } from '../doctor/finding.js';
import { pageOrigin, runDoctor, type DoctorOptions } from '../doctor/run.js';

export const doctorUsage = `herald doctor [URL] [--token JWT | --user ID] [--origin URL] [--api-key KEY] [--api-url URL]
              [--channel NAME] [--timeout 5s] [--scan-ports 3002,8000] [--config FILE] [--env-file FILE] [--json]
  Walks the path a browser takes to Herald (TCP, HTTP, upgrade, connect, round trip) and stops at the first
  broken step with what it saw, what it means and the fix. URL defaults to NEXT_PUBLIC_HERALD_URL, HERALD_URL
  (+ /ws), else ws://localhost:$WS_PORT/ws. Reads HERALD_TOKEN_SECRET (NEXTAUTH_SECRET), HERALD_API_KEY,
  HERALD_ALLOWED_ORIGINS, HERALD_TOKEN_AUDIENCE/ISSUER and HERALD_CONFIG like the server (--env-file: also from
  that file, e.g. herald init's herald.env; the environment wins). Exit 0 = all passed,
  1 = a step failed, 2 = bad arguments. The API is looked for at --api-url, HERALD_API_URL, HERALD_URL, else
  Herald's own address (through a Next.js rewrite: the rewrite's destination in ./.next/routes-manifest.json, else
  the ports looked at nearby). See @herald/server/docs/doctor.md.`;

export async function doctor(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      token: { type: 'string' },
      user: { type: 'string' },
      origin: { type: 'string' },
      'api-key': { type: 'string' },
      'api-url': { type: 'string' },
      channel: { type: 'string' },
      timeout: { type: 'string' },
      'scan-ports': { type: 'string' },
      config: { type: 'string' },
      'env-file': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(doctorUsage);
    return 0;
  }
  if (positionals.length > 1) {
    console.error(`herald doctor: one URL only (got ${positionals.length})\n${doctorUsage}`);
    return 2;
  }
  if (values.token !== undefined && values.user !== undefined) {
    console.error('herald doctor: pass --token or --user, not both');
    return 2;
  }
  let env: Record<string, string | undefined>;
  try {
    env = environmentWith(values['env-file']);
  } catch (err) {
    console.error(`herald doctor: ${(err as Error).message}`);
    return 2;
  }
  const timeoutMs = values.timeout === undefined ? 5000 : parseDurationMs(values.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) {
    console.error(`herald doctor: --timeout ${values.timeout}: expected a duration like 5s or 1500ms`);
    return 2;
  }
  if (values.origin !== undefined && !/^https?:\/\/[^/\s]+$/.test(values.origin)) {
    console.error(
      `herald doctor: --origin ${values.origin}: expected scheme://host[:port], e.g. http://localhost:3000`,
    );
    return 2;
  }

  let scanPorts: number[] | undefined;
  if (values['scan-ports'] !== undefined) {
    scanPorts = values['scan-ports'] === 'none' ? [] : values['scan-ports'].split(',').map((p) => Number(p.trim()));
    if (scanPorts.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) {
      console.error(
        `herald doctor: --scan-ports ${values['scan-ports']}: expected port numbers separated by commas, or none`,
      );
      return 2;
    }
  }

  // The same sources as the server, so the doctor mints tokens with the secret the server would use.
  let secret: string | undefined;
  let secretSource: string | undefined;
  let apiKey = values['api-key'];
  let audience: string | undefined;
  let issuer: string | undefined;
  try {
    const config = loadConfig({ env, configFile: values.config ?? env.HERALD_CONFIG });
    secret = config.token.hmacSecret;
    audience = config.token.audience;
    issuer = config.token.issuer;
    apiKey ??= config.apiKey;
  } catch (err) {
    console.error(`herald doctor: ignoring the server config (${(err as Error).message.split('\n')[0]})`);
    secret = env.HERALD_TOKEN_SECRET || env.NEXTAUTH_SECRET || undefined;
    apiKey ??= env.HERALD_API_KEY || undefined;
  }
  if (secret) {
    secretSource = env.HERALD_TOKEN_SECRET
      ? 'HERALD_TOKEN_SECRET'
      : env.NEXTAUTH_SECRET
        ? 'NEXTAUTH_SECRET'
        : 'the config file';
  }
  if (values.user !== undefined && !secret) {
    console.error(
      'herald doctor: --user needs the token secret: set HERALD_TOKEN_SECRET (or NEXTAUTH_SECRET, or HERALD_CONFIG)',
    );
    return 2;
  }
  // HERALD_URL is Herald's own base address (what `herald publish` uses): its WebSocket endpoint is /ws there.
  const fromHeraldUrl = env.HERALD_URL
    ? env.HERALD_URL.replace(/\/?$/, '').replace(/^(\w+:\/\/[^/]+)$/, '$1/ws')
    : undefined;
  const url =
    positionals[0] ?? env.NEXT_PUBLIC_HERALD_URL ?? fromHeraldUrl ?? `ws://localhost:${env.WS_PORT || '3002'}/ws`;

  try {
    parseTarget(url);
  } catch (err) {
    console.error(
      `herald doctor: ${url} is not a WebSocket URL (${(err as Error).message}); expected e.g. ws://localhost:3002/ws`,
    );
    return 2;
  }
  // Run in a Next.js app's directory, the doctor reads the app's rewrites to find Herald's own address.
  const opts: DoctorOptions = { url, timeoutMs, appDir: process.cwd() };
  if (values.token !== undefined) opts.token = values.token;
  if (values.user !== undefined) opts.user = values.user;
  if (values.origin !== undefined) opts.origin = values.origin;
  if (apiKey) opts.apiKey = apiKey;
  const apiUrl = values['api-url'] ?? env.HERALD_API_URL ?? env.HERALD_URL;
  if (apiUrl) opts.apiUrl = apiUrl;
  if (values.channel !== undefined) opts.channel = values.channel;
  if (secret) opts.secret = secret;
  if (secretSource) opts.secretSource = secretSource;
  if (audience) opts.audience = audience;
  if (issuer) opts.issuer = issuer;
  if (env.WS_PORT) opts.envPort = env.WS_PORT;
  if (scanPorts) opts.scanPorts = scanPorts;
  if (env.HERALD_ALLOWED_ORIGINS !== undefined) opts.allowedOrigins = env.HERALD_ALLOWED_ORIGINS;

  const colour = process.stdout.isTTY === true && !env.NO_COLOR && env.TERM !== 'dumb';
  if (!values.json) console.log(renderHeader(url, pageOrigin(opts)));
  const report = await runDoctor(opts, (f) => {
    if (!values.json) console.log(renderFinding(f, colour));
  });
  console.log(values.json ? renderJson(report) : renderSummary(report, colour));
  return report.ok ? 0 : 1;
}
