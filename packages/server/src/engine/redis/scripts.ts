/**
 * The Redis engine's Lua scripts. Each runs atomically on the one Redis instance (or Cluster slot) that holds the
 * channel's keys, so appending to history and publishing to the feed are one step: offsets reach every node in
 * order. Times come from Redis's own clock (TIME), so nodes with skewed clocks agree on expiry.
 */

/** Milliseconds since the epoch on Redis's clock, as a Lua number. */
const NOW_MS = `local __t = redis.call('TIME')
local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)`;

/** Bits of the first-life registry of one Redis (1 MiB, after a 32-byte header); it starts over once this many are set. */
export const FIRST_LIFE_BITS = 1 << 23;
export const FIRST_LIFE_ROTATE_AT = 1 << 18;
/** In a Redis Cluster each of the 16384 slots has its own registry, so each is smaller (2 KiB; 32 MiB in all). */
export const FIRST_LIFE_BITS_PER_SLOT = 1 << 14;
export const FIRST_LIFE_ROTATE_AT_PER_SLOT = 1 << 9;

/** How the scripts differ between one Redis and a Redis Cluster. */
export interface ScriptMode {
  /** PUBLISH on one Redis; SPUBLISH (sharded pub/sub, the feed's slot) in a cluster. */
  publish: 'PUBLISH' | 'SPUBLISH';
  bits: number;
  rotateAt: number;
}

export const STANDALONE: ScriptMode = { publish: 'PUBLISH', bits: FIRST_LIFE_BITS, rotateAt: FIRST_LIFE_ROTATE_AT };
export const CLUSTER: ScriptMode = {
  publish: 'SPUBLISH',
  bits: FIRST_LIFE_BITS_PER_SLOT,
  rotateAt: FIRST_LIFE_ROTATE_AT_PER_SLOT,
};

/**
 * The first-life registry (keys.ts: <prefix>.epochs, or one per slot in a cluster; no TTL): bytes 0-23 the
 * generation, 24-31 how many bits are set, then one bit per channel hash. It lets a channel that never had a
 * publication have a position without any key of its own: a read answers offset 0 and the channel's first epoch
 * (derived from the generation and the meta key's name) while its bit is clear, and the first publish creates the
 * stream with exactly that epoch and sets the bit. A set bit means the channel may have had a stream that ended
 * (meta expired or evicted): reads answer a stale epoch no stream ever gets, and the next stream gets a random one.
 * Redis restarted empty loses the registry with the streams, so the generation, and every first epoch, changes with
 * them. The registry is passed as a key (`regKey`), in the channel's slot in a cluster.
 * Defines: reg (key name), gen, bit (this channel's bit offset), firstEpoch, staleEpoch.
 */
const FIRST_LIFE = (candidateArg: string, regKey: string, mode: ScriptMode) => `local reg = ${regKey}
local head = redis.call('GETRANGE', reg, 0, 31)
if #head < 32 then
  head = string.sub(${candidateArg} .. string.rep('.', 24), 1, 24) .. '00000000'
  redis.call('SET', reg, head)
end
local gen = string.sub(head, 1, 24)
local bit = 256 + tonumber(string.sub(redis.sha1hex(KEYS[2]), 1, 8), 16) % ${mode.bits}
local firstEpoch = string.sub(redis.sha1hex(gen .. ':' .. KEYS[2]), 1, 16)
local staleEpoch = 'x' .. string.sub(redis.sha1hex(gen .. ':x:' .. KEYS[2]), 1, 15)`;

/**
 * Reads the stream's meta, creating it when absent (first publish): the channel's first epoch if its registry bit
 * was clear, else the candidate epoch. A stream left without meta is dropped.
 */
const ENSURE_META = (
  newEpochArg: string,
  metaTtlArg: string,
  regKey: string,
  mode: ScriptMode,
) => `local epoch = redis.call('HGET', KEYS[2], 'e')
local top = 0
if not epoch then
  ${FIRST_LIFE(newEpochArg, regKey, mode).replace(/\n/g, '\n  ')}
  if redis.call('SETBIT', reg, bit, 1) == 0 then
    epoch = firstEpoch
    local used = tonumber(string.sub(head, 25, 32)) + 1
    if used > ${mode.rotateAt} then
      redis.call('SET', reg, string.sub(${newEpochArg} .. '.' .. gen .. string.rep('.', 24), 1, 24) .. '00000000')
    else
      redis.call('SETRANGE', reg, 24, string.format('%08d', used))
    end
  else
    epoch = ${newEpochArg}
  end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 's', 0)
  redis.call('PEXPIRE', KEYS[2], ${metaTtlArg})
else
  top = tonumber(redis.call('HGET', KEYS[2], 's') or '0')
end`;

/**
 * Reads the stream's meta without creating anything: a channel without meta is at offset 0 of its first epoch
 * (or of its stale epoch, see FIRST_LIFE), and a stream left without meta is dropped.
 */
const READ_META = (
  newEpochArg: string,
  regKey: string,
  mode: ScriptMode,
) => `local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  redis.call('DEL', KEYS[1])
  ${FIRST_LIFE(newEpochArg, regKey, mode).replace(/\n/g, '\n  ')}
  if redis.call('GETBIT', reg, bit) == 0 then return {0, firstEpoch} end
  return {0, staleEpoch}
end
local top = tonumber(redis.call('HGET', KEYS[2], 's') or '0')`;

/**
 * KEYS: stream, meta, idempotency key, first-life registry. ARGV: envelope, history size, history TTL ms, meta TTL ms, feed channel,
 * candidate epoch, idempotent result TTL ms (0: no idempotency).
 * Returns {offset, epoch}, or {0, "<offset>:<epoch>"} when the idempotency key was seen.
 */
const PUBLISH_SCRIPT = (mode: ScriptMode) => `
if ARGV[7] ~= '0' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {0, seen} end
end
${ENSURE_META('ARGV[6]', 'ARGV[4]', 'KEYS[4]', mode)}
${NOW_MS}
local offset = redis.call('HINCRBY', KEYS[2], 's', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], offset .. '-0', 't', string.format('%.0f', now), 'p', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('${mode.publish}', ARGV[5], 'p' .. offset .. ':' .. epoch .. ':' .. ARGV[1])
if ARGV[7] ~= '0' then
  redis.call('SET', KEYS[3], offset .. ':' .. epoch, 'PX', ARGV[7])
end
return {offset, epoch}
`;

/**
 * KEYS: meta. ARGV: the epoch to replace, the new epoch. Replaces the epoch only if it is still the given one (a
 * second node that noticed the same rewind changes nothing). Returns the epoch now current ('' without meta).
 */
const ROTATE_EPOCH_SCRIPT = `
local e = redis.call('HGET', KEYS[1], 'e')
if not e then return '' end
if e == ARGV[1] then
  redis.call('HSET', KEYS[1], 'e', ARGV[2])
  return ARGV[2]
end
return e
`;

/**
 * KEYS: stream, meta, first-life registry. ARGV: candidate epoch (for a new registry generation), meta TTL ms (unused), since offset (-1: from the start), limit (-1: all,
 * 0: position only), reverse ('1'), history TTL ms, history size.
 * Returns {top, epoch, offset1, envelope1, offset2, envelope2, ...} in the order asked for.
 */
const HISTORY_SCRIPT = (mode: ScriptMode) => `
${READ_META('ARGV[1]', 'KEYS[3]', mode)}
local limit = tonumber(ARGV[4])
if limit == 0 then return {top, epoch} end
if tonumber(ARGV[7]) > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[7]) end
${NOW_MS}
local cutoff = now - tonumber(ARGV[6])
local since = tonumber(ARGV[3])
local first = '-'
if since >= 0 then first = string.format('%.0f', since + 1) .. '-0' end
local entries = redis.call('XRANGE', KEYS[1], first, '+')
local kept = {}
for _, e in ipairs(entries) do
  local f = e[2]
  local t, p = nil, nil
  for i = 1, #f, 2 do
    if f[i] == 't' then t = tonumber(f[i + 1]) elseif f[i] == 'p' then p = f[i + 1] end
  end
  if p and (t == nil or t > cutoff) then
    local id = e[1]
    kept[#kept + 1] = {string.sub(id, 1, string.find(id, '-', 1, true) - 1), p}
  end
end
local out = {top, epoch}
local n = #kept
local count = n
if limit > 0 and limit < n then count = limit end
for i = 1, count do
  local k
  if ARGV[5] == '1' then k = kept[n - i + 1] else k = kept[i] end
  out[#out + 1] = k[1]
  out[#out + 1] = k[2]
end
return out
`;

/** KEYS: presence hash, expiry zset. ARGV: client id, ClientInfo JSON, TTL ms. */
const PRESENCE_ADD_SCRIPT = `
${NOW_MS}
redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[3])), ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

/** KEYS: presence hash, expiry zset. ARGV: client id. */
const PRESENCE_REMOVE_SCRIPT = `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

/** KEYS: presence hash, expiry zset. Drops expired entries, then returns HGETALL (ARGV[1] = '1') or HVALS. */
const PRESENCE_GET_SCRIPT = `
${NOW_MS}
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
for _, c in ipairs(expired) do redis.call('HDEL', KEYS[1], c) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now)) end
if ARGV[1] == '1' then return redis.call('HGETALL', KEYS[1]) end
return redis.call('HVALS', KEYS[1])
`;

/**
 * A publish without history but with an idempotency key (the same dedup window as PUBLISH_SCRIPT, shared by every
 * node). KEYS: idempotency key. ARGV: feed channel, feed message, idempotent result TTL ms.
 * Returns {1, ''} when delivered, or {0, "0:"} when the key was seen (nothing delivered again).
 */
const PUBLISH_UNSTORED_SCRIPT = (mode: ScriptMode) => `
local seen = redis.call('GET', KEYS[1])
if seen then return {0, seen} end
redis.call('${mode.publish}', ARGV[1], ARGV[2])
redis.call('SET', KEYS[1], '0:', 'PX', ARGV[3])
return {1, ''}
`;

/** Moves the channel ARGV[n] in the lifecycle index to its earliest hold expiry, or out of it (and drops its counts). */
const LIFECYCLE_INDEX = (channelArg: string) => `local earliest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #earliest == 0 then
  redis.call('ZREM', KEYS[3], ${channelArg})
  redis.call('DEL', KEYS[2])
else
  redis.call('ZADD', KEYS[3], earliest[2], ${channelArg})
end`;

/**
 * KEYS: holds zset, counts hash, index zset. ARGV: member ("<node>|<key>"), key, TTL ms, channel.
 * Adds or refreshes the hold; returns 1 when no node held the key before (the caller sends the "up" event).
 * The channel's keys live three TTLs past the last hold, so the sweep always finds them first.
 */
const LIFECYCLE_HOLD_SCRIPT = `
${NOW_MS}
local first = 0
if redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[3])), ARGV[1]) == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then first = 1 end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 3)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) * 3)
${LIFECYCLE_INDEX('ARGV[4]')}
return first
`;

/**
 * KEYS: holds zset, counts hash, index zset. ARGV: member, key, channel.
 * Returns 1 when this release left no node holding the key (the caller sends the "down" event).
 */
const LIFECYCLE_RELEASE_SCRIPT = `
local last = 0
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[2])
    last = 1
  end
end
${LIFECYCLE_INDEX('ARGV[3]')}
return last
`;

/**
 * KEYS: index zset. ARGV: most channels to look at, key prefix. Releases every expired hold of the channels whose
 * earliest hold expired (a node that stopped refreshing: killed, or cut off for longer than the TTL). Returns
 * {channel1, key1, channel2, key2, ...}: the keys no node holds any more, each reported once.
 */
const LIFECYCLE_SWEEP_SCRIPT = `
${NOW_MS}
local nowText = string.format('%.0f', now)
local out = {}
for _, ch in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', nowText, 'LIMIT', 0, tonumber(ARGV[1]))) do
  local holds = ARGV[2] .. '.wh.hold.{' .. ch .. '}'
  local counts = ARGV[2] .. '.wh.count.{' .. ch .. '}'
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', holds, '-inf', nowText)) do
    redis.call('ZREM', holds, m)
    local key = string.sub(m, string.find(m, '|', 1, true) + 1)
    if redis.call('HINCRBY', counts, key, -1) <= 0 then
      redis.call('HDEL', counts, key)
      out[#out + 1] = ch
      out[#out + 1] = key
    end
  end
  local earliest = redis.call('ZRANGE', holds, 0, 0, 'WITHSCORES')
  if #earliest == 0 then
    redis.call('ZREM', KEYS[1], ch)
    redis.call('DEL', counts)
  else
    redis.call('ZADD', KEYS[1], earliest[2], ch)
  end
end
return out
`;

/**
 * A map change (map-broker.ts), atomically: state, stream, feed. KEYS: stream, meta, idempotency key, first-life
 * registry, map state hash, map keys zset, map expiry zset, map index zset. ARGV: op ('p' publish, 'r' remove, 'x'
 * remove the expired keys), envelope (with the key in its header), stream size, stream TTL ms, meta TTL ms, feed
 * channel, candidate epoch, idempotent result TTL ms (0: none), key, key TTL ms, if-new ('1'), channel.
 * Returns {offset, epoch, suppress reason ('' when something changed)}, or {0, "<offset>:<epoch>", 'idempotency'}.
 * A change renews every key of the map for meta TTL + key TTL, so the stream's meta (its epoch: what the state's
 * offsets mean) outlives every key. 'x' takes the stream options the last write stored in the meta hash.
 */
const MAP_WRITE_SCRIPT = (mode: ScriptMode) => `
local op = ARGV[1]
local key = ARGV[9]
if ARGV[8] ~= '0' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {0, seen, 'idempotency'} end
end
${NOW_MS}
local size, sttl, mttl, kttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[10])
local function position()
  local e = redis.call('HGET', KEYS[2], 'e')
  if not e then return 0, '' end
  return tonumber(redis.call('HGET', KEYS[2], 's') or '0'), e
end
local function alive(k)
  if redis.call('HEXISTS', KEYS[5], k) == 0 then return false end
  local exp = redis.call('ZSCORE', KEYS[7], k)
  return (not exp) or tonumber(exp) > now
end
local function keep(ms)
  for _, k in ipairs({KEYS[2], KEYS[5], KEYS[6], KEYS[7]}) do redis.call('PEXPIRE', k, ms) end
end
local function reindex()
  local earliest = redis.call('ZRANGE', KEYS[7], 0, 0, 'WITHSCORES')
  if #earliest == 0 then redis.call('ZREM', KEYS[8], ARGV[12]) else redis.call('ZADD', KEYS[8], earliest[2], ARGV[12]) end
end
if op == 'x' then
  local o = redis.call('HMGET', KEYS[2], 'sz', 'st', 'mt')
  if not o[1] then
    redis.call('DEL', KEYS[5], KEYS[6], KEYS[7])
    redis.call('ZREM', KEYS[8], ARGV[12])
    return {0, '', 'key_not_found'}
  end
  size, sttl, mttl, kttl = tonumber(o[1]), tonumber(o[2]), tonumber(o[3]), 0
end
if op == 'r' and not alive(key) then
  local top, e = position()
  return {top, e, 'key_not_found'}
end
if op == 'p' and ARGV[11] == '1' and alive(key) then
  if kttl > 0 then redis.call('ZADD', KEYS[7], string.format('%.0f', now + kttl), key) end
  keep(mttl + kttl)
  reindex()
  local top, e = position()
  return {top, e, 'key_exists'}
end
${ENSURE_META('ARGV[7]', 'ARGV[5]', 'KEYS[4]', mode)}
redis.call('HSET', KEYS[2], 'sz', size, 'st', sttl, 'mt', mttl)
local function change(k, removal)
  local offset = redis.call('HINCRBY', KEYS[2], 's', 1)
  local env
  if removal then
    local header = {k = k, r = 1}
    local stored = redis.call('HGET', KEYS[5], k)
    if stored then
      local rest = string.sub(stored, string.find(stored, ':', 1, true) + 1)
      local c = string.find(rest, ':', 1, true)
      local n = tonumber(string.sub(rest, 1, c - 1))
      if n > 0 then
        local h = cjson.decode(string.sub(rest, c + 1, c + n))
        if type(h) == 'table' and type(h.t) == 'table' then header.t = h.t end
      end
    end
    local hj = cjson.encode(header)
    env = #hj .. ':' .. hj
    redis.call('HDEL', KEYS[5], k)
    redis.call('ZREM', KEYS[6], k)
    redis.call('ZREM', KEYS[7], k)
  else
    env = ARGV[2]
    redis.call('HSET', KEYS[5], k, offset .. ':' .. env)
    redis.call('ZADD', KEYS[6], 0, k)
    if kttl > 0 then
      redis.call('ZADD', KEYS[7], string.format('%.0f', now + kttl), k)
    else
      redis.call('ZREM', KEYS[7], k)
    end
  end
  if size > 0 then
    redis.call('XADD', KEYS[1], 'MAXLEN', size, offset .. '-0', 't', string.format('%.0f', now), 'p', env)
    redis.call('PEXPIRE', KEYS[1], math.max(1, sttl))
  end
  redis.call('${mode.publish}', ARGV[6], 'p' .. offset .. ':' .. epoch .. ':' .. env)
  return offset
end
local offset = 0
if op == 'x' then
  for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', string.format('%.0f', now), 'LIMIT', 0, 100)) do
    offset = change(k, true)
  end
else
  offset = change(key, op == 'r')
end
keep(mttl + kttl)
reindex()
if offset == 0 then
  local top, e = position()
  return {top, e, 'key_not_found'}
end
if ARGV[8] ~= '0' then redis.call('SET', KEYS[3], offset .. ':' .. epoch, 'PX', ARGV[8]) end
return {offset, epoch, ''}
`;

/**
 * A page of a map's state with the stream position it is consistent with. KEYS: stream, meta, first-life registry,
 * map state hash, map keys zset, map expiry zset. ARGV: candidate epoch, cursor (the last key of the previous page,
 * '' for the first), limit. Returns {top, epoch} for a map without meta, else {top, epoch, next cursor ('' on the
 * last page), key1, "<offset>:<envelope>"1, ...}; keys past their TTL are left out.
 */
const MAP_READ_STATE_SCRIPT = (mode: ScriptMode) => `
${READ_META('ARGV[1]', 'KEYS[3]', mode)}
${NOW_MS}
local min = '-'
if ARGV[2] ~= '' then min = '(' .. ARGV[2] end
local limit = tonumber(ARGV[3])
local ks = redis.call('ZRANGEBYLEX', KEYS[5], min, '+', 'LIMIT', 0, limit + 1)
local out = {top, epoch, ''}
for i = 1, math.min(#ks, limit) do
  local k = ks[i]
  local v = redis.call('HGET', KEYS[4], k)
  local exp = redis.call('ZSCORE', KEYS[6], k)
  if v and ((not exp) or tonumber(exp) > now) then
    out[#out + 1] = k
    out[#out + 1] = v
  end
end
if #ks > limit then out[3] = ks[limit] end
return out
`;

/** The engine's scripts as ioredis commands: name -> keys and Lua, for one Redis or a Redis Cluster. */
export function redisScripts(mode: ScriptMode): Record<string, { numberOfKeys: number; lua: string }> {
  return {
    heraldPublish: { numberOfKeys: 4, lua: PUBLISH_SCRIPT(mode) },
    heraldPublishUnstored: { numberOfKeys: 1, lua: PUBLISH_UNSTORED_SCRIPT(mode) },
    heraldHistory: { numberOfKeys: 3, lua: HISTORY_SCRIPT(mode) },
    heraldRotateEpoch: { numberOfKeys: 1, lua: ROTATE_EPOCH_SCRIPT },
    heraldPresenceAdd: { numberOfKeys: 2, lua: PRESENCE_ADD_SCRIPT },
    heraldPresenceRemove: { numberOfKeys: 2, lua: PRESENCE_REMOVE_SCRIPT },
    heraldPresenceGet: { numberOfKeys: 2, lua: PRESENCE_GET_SCRIPT },
    heraldLifecycleHold: { numberOfKeys: 3, lua: LIFECYCLE_HOLD_SCRIPT },
    heraldLifecycleRelease: { numberOfKeys: 3, lua: LIFECYCLE_RELEASE_SCRIPT },
    heraldLifecycleSweep: { numberOfKeys: 1, lua: LIFECYCLE_SWEEP_SCRIPT },
    heraldMapWrite: { numberOfKeys: 8, lua: MAP_WRITE_SCRIPT(mode) },
    heraldMapReadState: { numberOfKeys: 6, lua: MAP_READ_STATE_SCRIPT(mode) },
  };
}
