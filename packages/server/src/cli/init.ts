import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const TOPOLOGIES = ['rewrite', 'direct', 'nginx', 'one-port'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

export const initUsage = `herald init [--topology rewrite|direct|nginx|one-port] [--app-url URL] [--port N]
            [--engine memory|redis] [--redis-url URL] [--dir DIR] [--force]
  Writes herald.config.json (Herald's config, JSON with comments: a chat namespace and the app's origin) and
  herald.env (the environment lines of Herald and of the Next.js app, with a fresh shared secret and API key) for
  a topology of @herald/server/docs/deployment.md: rewrite (default: the app's next.config rewrites /ws to Herald),
  direct (the browser connects to Herald's own port), nginx (nginx routes /ws), one-port (herald.attach() in the
  app's custom server). --app-url is the app's origin as the browser sees it (default http://localhost:3000,
  https://app.example.com for nginx); --port is Herald's (default 3002). Refuses to overwrite without --force.
  Then: herald serve --env-file herald.env`;

interface InitChoices {
  topology: Topology;
  appUrl: string;
  port: number;
  engine: 'memory' | 'redis';
  redisUrl: string;
  secret: string;
  apiKey: string;
}

const TOPOLOGY_TITLES: Record<Topology, string> = {
  rewrite: "same origin: the app's next.config rewrites /ws to Herald",
  direct: "direct: the browser connects to Herald's own port (NEXT_PUBLIC_HERALD_URL)",
  nginx: 'nginx in front: /ws goes to Herald, everything else to Next.js',
  'one-port': "one port: Herald attached to the app's custom server (herald.attach())",
};

/** Herald's config file: JSON with // comments (the loader strips them); no secrets, those are in herald.env. */
export function configFileText(c: InitChoices): string {
  return `// Herald's configuration, written by \`herald init --topology ${c.topology}\`
// (${TOPOLOGY_TITLES[c.topology]}).
// JSON with comments: Herald's loader accepts // and /* */ comments. The key names are Centrifugo v6's; every key and
// its default: @herald/server/docs/configuration.md. A misspelt key stops the start with the key meant.
// Secrets are not kept here: NEXTAUTH_SECRET and HERALD_API_KEY are in herald.env.
{
  "client": {
    // The page origins allowed to open a WebSocket, exactly as the browser sends them (scheme://host:port).
    // Add every origin the app is opened from (http://127.0.0.1:3000 is not http://localhost:3000).
    // HERALD_ALLOWED_ORIGINS (comma-separated) replaces this list.
    "allowed_origins": [${JSON.stringify(c.appUrl)}]
  },
  "channel": {
    "namespaces": [
      {
        // Channels named chat:<room>, e.g. chat:lobby. A channel in a namespace not listed here is refused (102).
        "name": "chat",
        // Signed-in users subscribe on their own (no subscription token) and publish to what they subscribed to.
        "allow_subscribe_for_client": true,
        "allow_publish_for_subscriber": true,
        // Who is in the room: presence, and join/leave messages to subscribers.
        "presence": true,
        "join_leave": true,
        "allow_presence_for_subscriber": true,
        // The last 100 messages, kept 300 s: a client that reconnects gets exactly what it missed.
        "history_size": 100,
        "history_ttl": "300s",
        "allow_history_for_subscriber": true,
        "force_recovery": true
      }
    ]
  }
}
`;
}

function heraldLines(c: InitChoices, configName: string): string[] {
  const lines = [`HERALD_CONFIG=${configName}`];
  if (c.topology === 'one-port') {
    lines.push(
      "# one-port: the app's server.mjs runs Herald (createHerald({ configFile: 'herald.config.json' })) on the",
      "# app's own port; `herald serve` is not needed. These lines are for `herald doctor` and `herald token`.",
    );
    return lines;
  }
  lines.push(`WS_PORT=${c.port}`);
  if (c.topology === 'direct') {
    lines.push('# direct: browsers connect to this port, so Herald listens on every interface.', 'HERALD_HOST=0.0.0.0');
  } else {
    const via = c.topology === 'rewrite' ? 'Next.js' : 'nginx';
    lines.push(`# ${c.topology}: only ${via} reaches Herald, so it listens on loopback.`, 'HERALD_HOST=127.0.0.1');
  }
  if (c.engine === 'redis') {
    lines.push(
      '# Several Herald nodes share channels, history and presence through Redis (@herald/server/docs/scaling.md).',
      'HERALD_ENGINE=redis',
      `REDIS_URL=${c.redisUrl}`,
    );
  }
  return lines;
}

function appLines(c: InitChoices): string[] {
  const herald = `http://127.0.0.1:${c.port}`;
  const lines = [`NEXTAUTH_URL=${c.appUrl}`];
  switch (c.topology) {
    case 'rewrite':
      lines.push(
        "# The rewrite's destination in next.config, read at next build (not at next start):",
        `#   rewrites: [{ source: '/ws', destination: \`\${process.env.HERALD_INTERNAL_URL}/ws\` }]`,
        `HERALD_INTERNAL_URL=${herald}`,
        "# The browser connects to /ws on the page's own origin: no NEXT_PUBLIC_HERALD_URL.",
      );
      break;
    case 'direct': {
      const u = new URL(c.appUrl);
      const ws = `${u.protocol === 'https:' ? 'wss' : 'ws'}://${u.hostname}:${c.port}/ws`;
      lines.push(
        '# Where the browser connects; Next.js writes it into client bundles at next build.',
        `NEXT_PUBLIC_HERALD_URL=${ws}`,
      );
      break;
    }
    case 'nginx':
      lines.push(
        '# nginx routes /ws to Herald (the location block in @herald/server/docs/deployment.md): build the app',
        "# without a /ws rewrite. The browser connects to /ws on the page's own origin.",
      );
      break;
    case 'one-port':
      lines.push(
        "# Herald answers /ws on the app's own port: build without a /ws rewrite (server.mjs refuses one).",
        "# The browser connects to /ws on the page's own origin; publish in process with herald.publish().",
      );
      break;
  }
  if (c.topology !== 'one-port') {
    lines.push(
      "# Herald's own address, for publishing from the app's server (HTTP API, herald publish) and herald doctor.",
      `HERALD_URL=${herald}`,
    );
  }
  return lines;
}

/** herald.env: both sides' environment, in sections; `herald serve --env-file` reads it (the process env wins). */
export function envFileText(c: InitChoices, configName: string): string {
  return [
    `# Written by \`herald init --topology ${c.topology}\`: the environment of Herald and of the Next.js app.`,
    '# Herald reads this file with `herald serve --env-file herald.env` (variables already set in the environment win).',
    "# Copy the two shared lines and the app's lines into the app's .env.local (next dev / next start read it).",
    '# Keep this file out of git: it holds secrets.',
    '',
    '## Shared: the same values on both sides',
    "# Signs the app's connection tokens (next-auth, @herald/next createTokenRoute) and verifies them in Herald",
    '# (Herald reads NEXTAUTH_SECRET when HERALD_TOKEN_SECRET is not set).',
    `NEXTAUTH_SECRET=${c.secret}`,
    "# Key of Herald's HTTP API (POST /api/publish ...); send it as X-API-Key from the app's server.",
    `HERALD_API_KEY=${c.apiKey}`,
    '',
    '## Herald',
    ...heraldLines(c, configName),
    '',
    '## The Next.js app (.env.local)',
    ...appLines(c),
    '',
  ].join('\n');
}

function parseAppUrl(raw: string): string | undefined {
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return u.origin;
  } catch {
    return undefined;
  }
}

export async function init(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      topology: { type: 'string' },
      'app-url': { type: 'string' },
      port: { type: 'string' },
      engine: { type: 'string' },
      'redis-url': { type: 'string' },
      dir: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(initUsage);
    return 0;
  }
  const topology = (values.topology ?? 'rewrite') as Topology;
  if (!TOPOLOGIES.includes(topology)) {
    console.error(`herald init: --topology ${values.topology}: expected one of ${TOPOLOGIES.join(', ')}\n${initUsage}`);
    return 2;
  }
  const appUrlRaw = values['app-url'] ?? (topology === 'nginx' ? 'https://app.example.com' : 'http://localhost:3000');
  const appUrl = parseAppUrl(appUrlRaw);
  if (!appUrl) {
    console.error(`herald init: --app-url ${appUrlRaw}: expected the app's origin, e.g. http://localhost:3000`);
    return 2;
  }
  const port = Number(values.port ?? '3002');
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`herald init: --port ${values.port}: expected a port number, e.g. 3002`);
    return 2;
  }
  const engine = values.engine ?? 'memory';
  if (engine !== 'memory' && engine !== 'redis') {
    console.error(`herald init: --engine ${engine}: expected memory or redis`);
    return 2;
  }
  if (values['redis-url'] !== undefined && engine !== 'redis') {
    console.error('herald init: --redis-url needs --engine redis');
    return 2;
  }
  if (engine === 'redis' && topology === 'one-port') {
    console.error(
      "herald init: --engine redis with one-port: pass the engine to createHerald in the app's server " +
        "(import { createRedisEngine } from '@herald/server/redis'); see @herald/server/docs/scaling.md",
    );
    return 2;
  }

  const dir = resolve(values.dir ?? '.');
  const configName = 'herald.config.json';
  const envName = 'herald.env';
  const configPath = join(dir, configName);
  const envPath = join(dir, envName);
  const existing = [configPath, envPath].filter((p) => existsSync(p));
  if (existing.length > 0 && !values.force) {
    console.error(
      `herald init: ${existing.map((p) => relative(process.cwd(), p) || p).join(' and ')} already exist${existing.length > 1 ? '' : 's'}; ` +
        'nothing was written. Pass --force to overwrite (herald.env gets a new secret and API key), or --dir DIR to write elsewhere.',
    );
    return 1;
  }
  const choices: InitChoices = {
    topology,
    appUrl,
    port,
    engine,
    redisUrl: values['redis-url'] ?? 'redis://127.0.0.1:6379',
    secret: randomBytes(32).toString('base64url'),
    apiKey: randomBytes(24).toString('base64url'),
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(configPath, configFileText(choices));
  writeFileSync(envPath, envFileText(choices, configName), { mode: 0o600 });

  const shown = (p: string) => relative(process.cwd(), p) || p;
  const cd = dir === process.cwd() ? '' : `cd ${relative(process.cwd(), dir) || dir} && `;
  const next =
    topology === 'one-port'
      ? `Next: copy the shared and app lines of ${shown(envPath)} into .env.local, and start the app's custom server\n` +
        "  (createHerald({ configFile: 'herald.config.json' }) and herald.attach(server, { path: '/ws' }),\n" +
        '  @herald/server/docs/deployment.md, "One port"). Check it with: npx herald doctor ws://localhost:3000/ws'
      : `Next: copy the shared and app lines of ${shown(envPath)} into the app's .env.local, then start Herald:\n` +
        `  ${cd}npx herald serve --env-file ${envName}\n` +
        `and check the path a browser takes: npx herald doctor ${topology === 'direct' ? `ws://localhost:${port}/ws` : `${appUrl.replace(/^http/, 'ws')}/ws`}`;
  console.log(
    `herald init: wrote ${shown(configPath)} (the chat namespace, allowed origin ${appUrl}) and ${shown(envPath)} ` +
      `(a new NEXTAUTH_SECRET and HERALD_API_KEY, Herald's and the app's lines) for the ${topology} topology` +
      (engine === 'redis' ? ' on Redis' : '') +
      `.\n${next}`,
  );
  return 0;
}
