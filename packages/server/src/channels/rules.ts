import type { HeraldConfig, NamespaceOptions } from '../config/index.js';
import { ErrorCode, HeraldError } from '../protocol/codes.js';
import { allowedUsersOf, channelNameProblem, namespaceOf } from './name.js';

/** A channel's resolved options; pure lookups, no I/O. */
export interface ChannelRules {
  channel: string;
  namespace: string | undefined;
  options: NamespaceOptions;
}

/** Validates the name and finds its namespace options; throws 107 for a malformed name, 102 for an unknown namespace. */
export function resolveChannel(config: Pick<HeraldConfig, 'channel'>, channel: unknown): ChannelRules {
  const problem = channelNameProblem(channel);
  if (problem) throw new HeraldError(ErrorCode.badRequest, `invalid channel name: ${problem}`);
  const name = channel as string;
  const ns = namespaceOf(name);
  if (ns === undefined) return { channel: name, namespace: undefined, options: config.channel.withoutNamespace };
  const options = config.channel.namespaces.get(ns);
  if (!options)
    throw new HeraldError(
      ErrorCode.unknownChannel,
      `unknown channel: namespace "${ns}" is not configured (add it to channel.namespaces)`,
    );
  return { channel: name, namespace: namespaceName(config.channel.namespaces, ns), options };
}

const namespaceNames = new WeakMap<ReadonlyMap<string, NamespaceOptions>, Map<string, string>>();

/** The config's own string for a namespace name, so that rules held per subscription share it rather than a copy. */
function namespaceName(namespaces: ReadonlyMap<string, NamespaceOptions>, ns: string): string {
  let names = namespaceNames.get(namespaces);
  if (!names) namespaceNames.set(namespaces, (names = new Map()));
  let name = names.get(ns);
  if (name === undefined) names.set(ns, (name = ns));
  return name;
}

export interface Actor {
  user: string;
  insecure: boolean;
}

function denied(what: string, channel: string): HeraldError {
  return new HeraldError(ErrorCode.permissionDenied, `permission denied: ${what} on channel "${channel}"`);
}

/** A user-limited channel (`chat#42,43`) lets only the listed users in, when the namespace allows such channels. */
export function userLimitedAllows(rules: ChannelRules, user: string): boolean | undefined {
  if (!rules.options.allow_user_limited_channels) return undefined;
  const users = allowedUsersOf(rules.channel);
  if (users === undefined) return undefined;
  return user !== '' && users.includes(user);
}

/** Subscribe without a subscription token. */
export function checkSubscribe(rules: ChannelRules, actor: Actor): void {
  if (actor.insecure) return;
  const limited = userLimitedAllows(rules, actor.user);
  if (limited === true) return;
  if (limited === false) throw denied('this channel is limited to other users', rules.channel);
  const o = rules.options;
  if (o.allow_subscribe_for_client && (actor.user !== '' || o.allow_subscribe_for_anonymous)) return;
  throw denied('subscribe needs a subscription token or allow_subscribe_for_client', rules.channel);
}

/** The three options that grant one client action, as Centrifugo names them. */
type Action = 'publish' | 'history' | 'presence';
type Grant = { client: keyof NamespaceOptions; subscriber: keyof NamespaceOptions; anonymous: keyof NamespaceOptions };
const grants: Record<Action, Grant> = {
  publish: {
    client: 'allow_publish_for_client',
    subscriber: 'allow_publish_for_subscriber',
    anonymous: 'allow_publish_for_anonymous',
  },
  history: {
    client: 'allow_history_for_client',
    subscriber: 'allow_history_for_subscriber',
    anonymous: 'allow_history_for_anonymous',
  },
  presence: {
    client: 'allow_presence_for_client',
    subscriber: 'allow_presence_for_subscriber',
    anonymous: 'allow_presence_for_anonymous',
  },
};

/** Allowed for any client (`*_for_client`) or for a subscriber of the channel (`*_for_subscriber`); anonymous users need `*_for_anonymous` too. */
function checkAction(action: Action, rules: ChannelRules, actor: Actor, subscribed: boolean): void {
  if (actor.insecure) return;
  // A user-limited channel is closed to everyone else for every action, whatever the *_for_client grants say.
  if (userLimitedAllows(rules, actor.user) === false)
    throw denied('this channel is limited to other users', rules.channel);
  const o = rules.options;
  const g = grants[action];
  const anonOk = actor.user !== '' || o[g.anonymous] === true;
  if (o[g.client] === true && anonOk) return;
  if (o[g.subscriber] === true && subscribed && anonOk) return;
  throw denied(`${action} needs ${g.client} or ${g.subscriber}`, rules.channel);
}

export function checkPublish(rules: ChannelRules, actor: Actor, subscribed: boolean): void {
  checkAction('publish', rules, actor, subscribed);
}

export function checkHistory(rules: ChannelRules, actor: Actor, subscribed: boolean): void {
  if (rules.options.history_size <= 0)
    throw new HeraldError(
      ErrorCode.notAvailable,
      `history is not enabled for channel "${rules.channel}" (set history_size and history_ttl)`,
    );
  checkAction('history', rules, actor, subscribed);
}

export function checkPresence(rules: ChannelRules, actor: Actor, subscribed: boolean): void {
  if (!rules.options.presence)
    throw new HeraldError(
      ErrorCode.notAvailable,
      `presence is not enabled for channel "${rules.channel}" (set presence: true)`,
    );
  checkAction('presence', rules, actor, subscribed);
}

/**
 * A client's map publish (`publish` with `type: 1`) or map remove (`removed: true`), under the namespace's
 * `map.allow_publish_*` / `map.allow_remove_*` options (the namespace-level allow_publish_* are for streams).
 * 108 when the channel is not a map a client may write (a stream, or a map_clients channel Herald writes itself).
 */
export function checkMapWrite(rules: ChannelRules, actor: Actor, subscribed: boolean, remove: boolean): void {
  const m = rules.options.map;
  if (!m || rules.options.subscription_type !== 'map')
    throw new HeraldError(
      ErrorCode.notAvailable,
      `not available: channel "${rules.channel}" is not a map channel (subscription_type "map")`,
    );
  if (actor.insecure) return;
  if (userLimitedAllows(rules, actor.user) === false)
    throw denied('this channel is limited to other users', rules.channel);
  const verb = remove ? 'remove' : 'publish';
  const anonOk = actor.user !== '' || m[`allow_${verb}_for_anonymous`];
  if (m[`allow_${verb}_for_client`] && anonOk) return;
  if (m[`allow_${verb}_for_subscriber`] && subscribed && anonOk) return;
  throw denied(`map ${verb} needs map.allow_${verb}_for_client or map.allow_${verb}_for_subscriber`, rules.channel);
}
