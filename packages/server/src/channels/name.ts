/**
 * Channel-name validation: a bounded character scan, no regex built from input, so hostile names cost O(length)
 * and never reach an engine. Refused: empty, longer than MAX_CHANNEL_LENGTH, control characters and whitespace,
 * glob/pattern characters (`* ? [ ] { }`, which mean something to Redis pattern commands), quotes, backslash and `..`.
 */
export const MAX_CHANNEL_LENGTH = 255;

const FORBIDDEN = new Set(['*', '?', '[', ']', '{', '}', '"', "'", '\\', '<', '>', '`']);

/** Unicode space separators and line/paragraph separators beyond Latin-1 (what JavaScript's \\s also matches). */
function isUnicodeSpace(c: number): boolean {
  return (
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** Returns why the name is refused, or undefined when it is a valid channel name. */
export function channelNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'channel must be a string';
  if (name.length === 0) return 'channel must not be empty';
  if (name.length > MAX_CHANNEL_LENGTH) return `channel is longer than ${MAX_CHANNEL_LENGTH} characters`;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || (c >= 0x80 && c <= 0xa0) || isUnicodeSpace(c)) {
      return 'channel must not contain control characters or whitespace';
    }
    const ch = name[i]!;
    if (FORBIDDEN.has(ch)) return `channel must not contain "${ch}"`;
    if (ch === '.' && name[i + 1] === '.') return 'channel must not contain ".."';
    // Lone surrogates cannot be encoded as UTF-8 and would corrupt keys and frames.
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = name.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return 'channel must be valid Unicode';
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return 'channel must be valid Unicode';
  }
  return undefined;
}

export function isValidChannelName(name: unknown): name is string {
  return channelNameProblem(name) === undefined;
}

/** Splits `ns:rest` at the first ':'; a leading ':' or no ':' means no namespace. */
export function namespaceOf(channel: string): string | undefined {
  const i = channel.indexOf(':');
  return i > 0 ? channel.slice(0, i) : undefined;
}

/** For `chat#42,43` returns ['42', '43']; undefined when the channel is not user-limited. */
export function allowedUsersOf(channel: string): string[] | undefined {
  const i = channel.lastIndexOf('#');
  if (i < 0) return undefined;
  return channel
    .slice(i + 1)
    .split(',')
    .filter((u) => u.length > 0);
}
