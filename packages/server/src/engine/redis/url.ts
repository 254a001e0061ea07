import { redactUrl } from '../../logger.js';

/**
 * The forms of one Redis in REDIS_URL:
 *   redis://[user:password@]host:port[/db]            one Redis (rediss:// for TLS)
 *   redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/db][?sentinel_password=…]
 *                                                      the primary that these Sentinels name; after a failover the
 *                                                      connections follow the new primary
 * The credentials in a sentinel URL are the primary's; `sentinel_password` (and `sentinel_username`) are the
 * Sentinels' own, when they require one.
 */
export type RedisTarget =
  | { kind: 'direct'; url: string }
  | {
      kind: 'sentinel';
      sentinels: { host: string; port: number }[];
      name: string;
      db: number;
      username?: string;
      password?: string;
      sentinelUsername?: string;
      sentinelPassword?: string;
    };

const SENTINEL = /^redis\+sentinel:\/\/(?:([^@/]*)@)?([^/?#]+)\/([^/?#]+)(?:\/(\d+))?\/?(?:\?([^#]*))?$/i;

/** Parses one entry of REDIS_URL; throws an Error whose message says what to write. */
export function parseRedisTarget(url: string): RedisTarget {
  if (/^redis\+sentinel:/i.test(url)) {
    const m = SENTINEL.exec(url);
    if (!m)
      throw new Error('a Sentinel URL is redis+sentinel://[user:password@]host:port[,host:port…]/<master name>[/db]');
    const [, auth, hosts, name, db, query] = m;
    const sentinels = hosts!.split(',').map((h) => {
      const hp = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(h.trim());
      if (!hp) throw new Error(`"${h}" is not host:port`);
      return { host: hp[1]!.replace(/^\[|\]$/g, ''), port: hp[2] === undefined ? 26379 : Number(hp[2]) };
    });
    const target: RedisTarget = {
      kind: 'sentinel',
      sentinels,
      name: decodeURIComponent(name!),
      db: db === undefined ? 0 : Number(db),
    };
    if (auth !== undefined) {
      const colon = auth.indexOf(':');
      const user = decodeURIComponent(colon < 0 ? '' : auth.slice(0, colon));
      const pass = decodeURIComponent(colon < 0 ? auth : auth.slice(colon + 1));
      if (user) target.username = user;
      if (pass) target.password = pass;
    }
    const params = new URLSearchParams(query ?? '');
    for (const key of params.keys()) {
      if (key !== 'sentinel_password' && key !== 'sentinel_username')
        throw new Error(`unknown parameter "${key}" (known: sentinel_password, sentinel_username)`);
    }
    if (params.has('sentinel_password')) target.sentinelPassword = params.get('sentinel_password')!;
    if (params.has('sentinel_username')) target.sentinelUsername = params.get('sentinel_username')!;
    return target;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('not a URL');
  }
  if ((parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || !parsed.hostname)
    throw new Error('not a Redis URL');
  return { kind: 'direct', url };
}

/** The entry with its password replaced by ***, for logs; `fallback` when it cannot be read at all. */
export function redactRedisUrl(url: string, fallback: string): string {
  if (/^redis\+sentinel:/i.test(url)) {
    return url
      .replace(
        /^(redis\+sentinel:\/\/)([^@/]*)@/i,
        (_, head: string, auth: string) =>
          `${head}${auth.includes(':') ? auth.slice(0, auth.indexOf(':') + 1) : ''}***@`,
      )
      .replace(/([?&]sentinel_password=)[^&#]*/i, '$1***');
  }
  return redactUrl(url, fallback);
}

/** What identifies one Redis in a list (without credentials), to refuse the same one listed twice. */
export function redisTargetIdentity(target: RedisTarget): string {
  if (target.kind === 'sentinel')
    return `sentinel ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}/${target.name}/${target.db}`;
  const u = new URL(target.url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
