/**
 * The messages of Centrifugo's client protocol that Herald sends, as protobuf field numbers keyed by their JSON
 * names. Reference: centrifugal/protocol, definitions/client.proto at commit
 * a578daf7f6d99b6e968893a61f26cd9cfc2b4bf4 (the wire format only; nothing is generated from it).
 *
 * `json` fields are `bytes` in protobuf that Herald holds as JSON text (data, info): their JSON text's UTF-8 bytes
 * are the field's bytes. `pubData` is a publication's data: the same, except in a fossil-delta subscription, where
 * JSON carries the payload or patch as a JSON string and protobuf carries that string's bytes unquoted.
 */

export type FieldKind =
  | 'string'
  | 'bool'
  | 'uint'
  | 'int'
  | 'json'
  | 'pubData'
  /** A bool that marks the rest of its message (a subscribe result) as a fossil-delta one. */
  | 'deltaFlag'
  | { message: MessageSchema }
  | { repeated: MessageSchema }
  | { map: MessageSchema | 'string' };

export type MessageSchema = { readonly [jsonName: string]: readonly [field: number, kind: FieldKind] };

export const CLIENT_INFO: MessageSchema = {
  user: [1, 'string'],
  client: [2, 'string'],
  conn_info: [3, 'json'],
  chan_info: [4, 'json'],
};

export const PUBLICATION: MessageSchema = {
  data: [4, 'pubData'],
  info: [5, { message: CLIENT_INFO }],
  offset: [6, 'uint'],
  tags: [7, { map: 'string' }],
  delta: [8, 'bool'],
  key: [11, 'string'],
  removed: [12, 'bool'],
  epoch: [14, 'string'],
  version: [16, 'uint'],
};

export const SUBSCRIBE_RESULT: MessageSchema = {
  expires: [1, 'bool'],
  ttl: [2, 'uint'],
  recoverable: [3, 'bool'],
  epoch: [6, 'string'],
  publications: [7, { repeated: PUBLICATION }],
  recovered: [8, 'bool'],
  offset: [9, 'uint'],
  positioned: [10, 'bool'],
  data: [11, 'json'],
  was_recovering: [12, 'bool'],
  delta: [13, 'deltaFlag'],
  type: [15, 'int'],
  phase: [16, 'int'],
  cursor: [17, 'string'],
  state: [18, { repeated: PUBLICATION }],
  publish_debounce: [19, 'uint'],
};

const ERROR: MessageSchema = { code: [1, 'uint'], message: [2, 'string'], temporary: [3, 'bool'] };

const CONNECT_RESULT: MessageSchema = {
  client: [1, 'string'],
  version: [2, 'string'],
  expires: [3, 'bool'],
  ttl: [4, 'uint'],
  data: [5, 'json'],
  subs: [6, { map: SUBSCRIBE_RESULT }],
  ping: [7, 'uint'],
  pong: [8, 'bool'],
  session: [9, 'string'],
  node: [10, 'string'],
};

const REFRESH_RESULT: MessageSchema = {
  client: [1, 'string'],
  version: [2, 'string'],
  expires: [3, 'bool'],
  ttl: [4, 'uint'],
};

const EXPIRY: MessageSchema = { expires: [1, 'bool'], ttl: [2, 'uint'] };
const EMPTY: MessageSchema = {};

/** The `subscribe` push (a server-side subscription): Herald sends a subscribe result; the rest is not in it. */
const SUBSCRIBE_PUSH: MessageSchema = {
  recoverable: [1, 'bool'],
  epoch: [4, 'string'],
  offset: [5, 'uint'],
  positioned: [6, 'bool'],
  data: [7, 'json'],
};

const PUSH: MessageSchema = {
  channel: [2, 'string'],
  pub: [4, { message: PUBLICATION }],
  join: [5, { message: { info: [1, { message: CLIENT_INFO }] } }],
  leave: [6, { message: { info: [1, { message: CLIENT_INFO }] } }],
  unsubscribe: [7, { message: { code: [2, 'uint'], reason: [3, 'string'] } }],
  message: [8, { message: { data: [1, 'json'] } }],
  subscribe: [9, { message: SUBSCRIBE_PUSH }],
  connect: [10, { message: CONNECT_RESULT }],
  disconnect: [11, { message: { code: [1, 'uint'], reason: [2, 'string'], reconnect: [3, 'bool'] } }],
  refresh: [12, { message: EXPIRY }],
};

export const REPLY: MessageSchema = {
  id: [1, 'uint'],
  error: [2, { message: ERROR }],
  push: [4, { message: PUSH }],
  connect: [5, { message: CONNECT_RESULT }],
  subscribe: [6, { message: SUBSCRIBE_RESULT }],
  unsubscribe: [7, { message: EMPTY }],
  publish: [8, { message: EMPTY }],
  presence: [9, { message: { presence: [1, { map: CLIENT_INFO }] } }],
  presence_stats: [10, { message: { num_clients: [1, 'uint'], num_users: [2, 'uint'] } }],
  history: [
    11,
    { message: { publications: [1, { repeated: PUBLICATION }], epoch: [2, 'string'], offset: [3, 'uint'] } },
  ],
  ping: [12, { message: EMPTY }],
  rpc: [13, { message: { data: [1, 'json'] } }],
  refresh: [14, { message: REFRESH_RESULT }],
  sub_refresh: [15, { message: { expires: [1, 'bool'], ttl: [2, 'uint'], items: [3, { repeated: PUBLICATION }] } }],
};
