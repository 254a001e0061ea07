import type { HeraldCore, PublishSource } from '../herald.js';
import { channelNameProblem } from '../channels/name.js';
import { ErrorCode, HeraldError } from '../protocol/codes.js';
import { encodeClientInfo, encodePublicationList } from '../protocol/codec.js';

/**
 * The server API's methods (Centrifugo's shapes), shared by the HTTP API, the in-process API and the outbox.
 * Each takes the parsed JSON body and resolves with the JSON text of `result`, or throws HeraldError.
 */
export const API_METHODS = [
  'publish', 'broadcast', 'subscribe', 'unsubscribe', 'disconnect', 'refresh', 'presence', 'presence_stats',
  'history', 'history_remove', 'channels', 'info', 'batch',
] as const;
export type ApiMethod = (typeof API_METHODS)[number];
const methodSet = new Set<string>(API_METHODS);

export function isApiMethod(m: string): m is ApiMethod {
  return methodSet.has(m);
}

function bad(message: string): HeraldError {
  return new HeraldError(ErrorCode.badRequest, `bad request: ${message}`);
}

function obj(params: unknown): Record<string, unknown> {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw bad('body must be a JSON object');
  return params as Record<string, unknown>;
}

function reqString(p: Record<string, unknown>, key: string): string {
  const v = p[key];
  if (typeof v !== 'string' || v === '') throw bad(`"${key}" must be a non-empty string`);
  return v;
}

function optString(p: Record<string, unknown>, key: string): string | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw bad(`"${key}" must be a string`);
  return v;
}

function channelOf(p: Record<string, unknown>): string {
  const c = p.channel;
  const problem = channelNameProblem(c);
  if (problem) throw bad(`invalid channel: ${problem}`);
  return c as string;
}

function tagsOf(p: Record<string, unknown>): Record<string, string> | undefined {
  const t = p.tags;
  if (t === undefined || t === null) return undefined;
  if (typeof t !== 'object' || Array.isArray(t)) throw bad('"tags" must be an object of strings');
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(t as Record<string, unknown>)) {
    if (typeof v !== 'string') throw bad(`tag "${k}" must be a string`);
    out[k] = v;
  }
  return { ...out };
}

/** Runs one API method; `source` labels its publications in /metrics. */
export async function executeApi(core: HeraldCore, method: string, params: unknown, source: PublishSource = 'api'): Promise<string> {
  const p = obj(params);
  switch (method) {
    case 'publish': {
      const channel = channelOf(p);
      if (!Object.hasOwn(p, 'data')) throw bad('"data" is required');
      const pos = await core.publish(channel, p.data, { tags: tagsOf(p), idempotencyKey: optString(p, 'idempotency_key'), source });
      return `{"offset":${pos.offset},"epoch":${JSON.stringify(pos.epoch)}}`;
    }
    case 'broadcast': {
      const channels = p.channels;
      if (!Array.isArray(channels) || channels.length === 0) throw bad('"channels" must be a non-empty array');
      if (!Object.hasOwn(p, 'data')) throw bad('"data" is required');
      const tags = tagsOf(p);
      const key = optString(p, 'idempotency_key');
      const responses = await Promise.all(channels.map(async (c) => {
        try {
          const channel = channelOf({ channel: c });
          const pos = await core.publish(channel, p.data, { tags, idempotencyKey: key, source });
          return `{"result":{"offset":${pos.offset},"epoch":${JSON.stringify(pos.epoch)}}}`;
        } catch (err) {
          const e = err instanceof HeraldError ? err : new HeraldError(ErrorCode.internal);
          return `{"error":${JSON.stringify(e.toReply())}}`;
        }
      }));
      return `{"responses":[${responses.join(',')}]}`;
    }
    case 'subscribe': {
      await core.subscribeUser(reqString(p, 'user'), channelOf(p), optString(p, 'client'));
      return '{}';
    }
    case 'unsubscribe': {
      await core.unsubscribeUser(reqString(p, 'user'), channelOf(p), optString(p, 'client'));
      return '{}';
    }
    case 'disconnect': {
      const user = reqString(p, 'user');
      let code = 3503;
      let reason = 'force disconnect';
      const d = (p.disconnect ?? p) as Record<string, unknown>;
      if (d && typeof d === 'object') {
        if (d.code !== undefined) {
          if (typeof d.code !== 'number' || !Number.isInteger(d.code) || d.code < 3000 || d.code > 4999) throw bad('"code" must be an integer 3000-4999');
          code = d.code;
        }
        if (typeof d.reason === 'string') reason = d.reason;
      }
      await core.disconnectUser(user, { client: optString(p, 'client'), code, reason });
      return '{}';
    }
    case 'refresh':
      throw new HeraldError(ErrorCode.notAvailable, 'not available: refresh is driven by connection tokens');
    case 'presence': {
      const entries = await core.presence(channelOf(p));
      const parts: string[] = [];
      for (const [client, info] of entries) parts.push(`${JSON.stringify(client)}:${encodeClientInfo(info)}`);
      return `{"presence":{${parts.join(',')}}}`;
    }
    case 'presence_stats': {
      const s = await core.presenceStats(channelOf(p));
      return `{"num_clients":${s.numClients},"num_users":${s.numUsers}}`;
    }
    case 'history': {
      const channel = channelOf(p);
      const limit = p.limit === undefined ? 0 : p.limit;
      if (typeof limit !== 'number' || !Number.isInteger(limit)) throw bad('"limit" must be an integer');
      let since: { offset: number; epoch: string } | undefined;
      if (p.since !== undefined && p.since !== null) {
        const s = obj(p.since);
        if (typeof s.offset !== 'number') throw bad('"since.offset" must be a number');
        since = { offset: s.offset, epoch: typeof s.epoch === 'string' ? s.epoch : '' };
      }
      const r = await core.history(channel, { limit, since, reverse: p.reverse === true });
      return `{"publications":${encodePublicationList(r.publications)},"epoch":${JSON.stringify(r.position.epoch)},"offset":${r.position.offset}}`;
    }
    case 'history_remove': {
      await core.removeHistory(channelOf(p));
      return '{}';
    }
    case 'channels': {
      const pattern = optString(p, 'pattern');
      const parts: string[] = [];
      for (const [name, n] of await core.channels()) {
        if (pattern && !globMatch(pattern, name)) continue;
        parts.push(`${JSON.stringify(name)}:{"num_clients":${n}}`);
      }
      return `{"channels":{${parts.join(',')}}}`;
    }
    case 'info':
      return JSON.stringify({ nodes: core.nodes() });
    case 'batch': {
      const commands = p.commands;
      if (!Array.isArray(commands)) throw bad('"commands" must be an array');
      if (commands.length > 1000) throw bad('at most 1000 commands per batch');
      const run = async (c: unknown): Promise<string> => {
        try {
          const cmd = obj(c);
          const keys = Object.keys(cmd);
          if (keys.length !== 1 || keys[0] === 'batch' || !isApiMethod(keys[0]!)) throw bad('each command is {"<method>": {...}}');
          return `{"${keys[0]}":${await executeApi(core, keys[0]!, cmd[keys[0]!], source)}}`;
        } catch (err) {
          const e = err instanceof HeraldError ? err : new HeraldError(ErrorCode.internal);
          return `{"error":${JSON.stringify(e.toReply())}}`;
        }
      };
      const replies: string[] = [];
      if (p.parallel === true) replies.push(...(await Promise.all(commands.map(run))));
      else for (const c of commands) replies.push(await run(c));
      return `{"replies":[${replies.join(',')}]}`;
    }
    default:
      throw new HeraldError(ErrorCode.methodNotFound, `method not found: "${method.slice(0, 40)}"`);
  }
}

/** `*` matches any run of characters; linear time, no regex built from input. */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
