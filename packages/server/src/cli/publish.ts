import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { environmentWith } from './env-file.js';

export const publishUsage = `herald publish CHANNEL JSON [--url http://127.0.0.1:3002] [--api-key KEY] [--env-file FILE]
  Publishes through the HTTP API (POST /api/publish) with HERALD_API_KEY, at HERALD_URL (else 127.0.0.1:$WS_PORT);
  --env-file: also from that file, e.g. herald init's herald.env (the environment wins).`;

export async function publish(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      'api-key': { type: 'string' },
      'env-file': { type: 'string' },
      help: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(publishUsage);
    return 0;
  }
  const [channel, json] = positionals;
  if (!channel || json === undefined) {
    console.error('herald publish: needs CHANNEL and JSON\n' + publishUsage);
    return 2;
  }
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    console.error(`herald publish: ${JSON.stringify(json)} is not JSON (quote it: '{"text":"hi"}')`);
    return 2;
  }
  const env = environmentWith(values['env-file']);
  const config = loadConfig({ env });
  const apiKey = values['api-key'] ?? config.apiKey;
  const base = (values.url ?? env.HERALD_URL ?? `http://127.0.0.1:${config.port}`)
    .replace(/\/$/, '')
    .replace(/^ws/, 'http')
    .replace(/\/(ws|connection\/websocket)$/, '');
  let res: Response;
  try {
    res = await fetch(`${base}/api/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(apiKey ? { 'x-api-key': apiKey } : {}) },
      body: JSON.stringify({ channel, data }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    console.error(
      `herald publish: cannot reach ${base} (${(err as Error).cause ?? (err as Error).message}); is Herald running? (npm start)`,
    );
    return 1;
  }
  const text = await res.text();
  if (!res.ok || text.includes('"error"')) {
    console.error(`herald publish: ${res.status} ${text}`);
    return 1;
  }
  console.log(text);
  return 0;
}
