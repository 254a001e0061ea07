import type { ClientInfo, Publication, PublicationInput } from '../types.js';

/**
 * How a publication is stored in a stream entry and sent on a channel feed: `<n>:<header><data>`, where `header`
 * is `n` characters of JSON holding info and tags (empty when there are none) and `data` is the payload's JSON
 * text as is. The payload is never parsed or re-serialized on its way through Redis.
 */
export function encodeEnvelope(pub: PublicationInput & { key?: string }): string {
  let header = '';
  if (pub.key !== undefined) header = JSON.stringify({ i: pub.info, t: pub.tags, k: pub.key });
  else if (pub.info || pub.tags) header = JSON.stringify(pub.tags ? { i: pub.info, t: pub.tags } : { i: pub.info });
  return `${header.length}:${header}${pub.data}`;
}

export function decodeEnvelope(text: string, offset: number): Publication {
  const colon = text.indexOf(':');
  const len = colon > 0 ? Number(text.slice(0, colon)) : NaN;
  if (!Number.isInteger(len) || len < 0 || colon + 1 + len > text.length)
    throw new Error('malformed publication envelope');
  const pub: Publication = { offset, data: text.slice(colon + 1 + len) };
  if (len > 0) {
    const header = JSON.parse(text.slice(colon + 1, colon + 1 + len)) as {
      i?: ClientInfo;
      t?: Record<string, string>;
      /** Map channels (map-broker.ts): the key, and a removal (set by the map script). */
      k?: string;
      r?: number;
    };
    if (header.i) pub.info = header.i;
    // The map script encodes an empty tags table as [] (Lua cannot tell it from an empty array).
    if (header.t && !Array.isArray(header.t)) pub.tags = header.t;
    if (header.k !== undefined) pub.key = header.k;
    if (header.r) pub.removed = true;
  }
  return pub;
}

/**
 * Feed messages on `<prefix>.pub.{channel}`:
 *   p<offset>:<epoch>:<envelope>   a publication (offset 0 and empty epoch without history)
 *   j<ClientInfo JSON>             join
 *   l<ClientInfo JSON>             leave
 */
export type FeedMessage =
  { kind: 'pub'; pub: Publication; epoch: string } | { kind: 'join' | 'leave'; info: ClientInfo };

export function decodeFeedMessage(text: string): FeedMessage {
  const kind = text[0];
  if (kind === 'p') {
    const c1 = text.indexOf(':', 1);
    const c2 = c1 < 0 ? -1 : text.indexOf(':', c1 + 1);
    if (c2 < 0) throw new Error('malformed publication message');
    const offset = Number(text.slice(1, c1));
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error('malformed publication offset');
    return { kind: 'pub', epoch: text.slice(c1 + 1, c2), pub: decodeEnvelope(text.slice(c2 + 1), offset) };
  }
  if (kind === 'j' || kind === 'l')
    return { kind: kind === 'j' ? 'join' : 'leave', info: JSON.parse(text.slice(1)) as ClientInfo };
  throw new Error('unknown feed message');
}

export const encodeJoin = (info: ClientInfo): string => 'j' + JSON.stringify(info);
export const encodeLeave = (info: ClientInfo): string => 'l' + JSON.stringify(info);
export const encodeUnstoredPublication = (pub: PublicationInput): string => 'p0::' + encodeEnvelope(pub);
