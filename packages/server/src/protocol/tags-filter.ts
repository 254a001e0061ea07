import { ErrorCode, HeraldError } from './codes.js';

/**
 * Tags filters: the `tf` of a subscribe (client.proto FilterNode). A leaf (`op` '' or absent) compares the tag `key`
 * with `cmp`: eq, neq, in, nin (against `vals`), ex, nex (the tag exists or not), sw, ew, ct (starts with, ends with,
 * contains), lt, lte, gt, gte (numeric). `and` / `or` combine `nodes`; `not` negates its one node. A subscriber with
 * a filter receives only the entries and changes whose tags match it. Pure functions; no I/O.
 */
export type TagsFilter =
  | { op: 'and' | 'or'; nodes: TagsFilter[] }
  | { op: 'not'; node: TagsFilter }
  | { op: 'leaf'; key: string; cmp: Comparison; val: string; vals: string[] };

type Comparison = 'eq' | 'neq' | 'in' | 'nin' | 'ex' | 'nex' | 'sw' | 'ew' | 'ct' | 'lt' | 'lte' | 'gt' | 'gte';
const COMPARISONS = new Set<string>([
  'eq',
  'neq',
  'in',
  'nin',
  'ex',
  'nex',
  'sw',
  'ew',
  'ct',
  'lt',
  'lte',
  'gt',
  'gte',
]);

/** Deeper filters are refused: a filter is a few comparisons, and matching recurses. */
const MAX_DEPTH = 16;
/** Nodes of one filter at most. */
const MAX_NODES = 256;

function bad(message: string): HeraldError {
  return new HeraldError(ErrorCode.badRequest, `bad request: tags filter: ${message}`);
}

/** The filter of a subscribe's `tf`, or throws 107 saying what is wrong with it. */
export function parseTagsFilter(raw: unknown): TagsFilter {
  const count = { n: 0 };
  return node(raw, 0, count);
}

function node(raw: unknown, depth: number, count: { n: number }): TagsFilter {
  if (depth > MAX_DEPTH) throw bad(`nested deeper than ${MAX_DEPTH}`);
  if (++count.n > MAX_NODES) throw bad(`more than ${MAX_NODES} nodes`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('each node must be an object');
  const r = raw as Record<string, unknown>;
  const op = r.op ?? '';
  const nodes = r.nodes ?? [];
  if (!Array.isArray(nodes)) throw bad('"nodes" must be an array');
  if (op === 'and' || op === 'or') {
    if (nodes.length === 0) throw bad(`"${op}" needs nodes`);
    return { op, nodes: nodes.map((n) => node(n, depth + 1, count)) };
  }
  if (op === 'not') {
    if (nodes.length !== 1) throw bad('"not" takes exactly one node');
    return { op, node: node(nodes[0], depth + 1, count) };
  }
  if (op !== '') throw bad(`unknown op ${JSON.stringify(op)} (expected "and", "or", "not" or none)`);
  const key = r.key;
  const cmp = r.cmp;
  if (typeof key !== 'string' || key === '') throw bad('a comparison needs a "key"');
  if (typeof cmp !== 'string' || !COMPARISONS.has(cmp))
    throw bad(`unknown cmp ${JSON.stringify(cmp)} (expected one of ${[...COMPARISONS].join(', ')})`);
  const val = r.val ?? '';
  const vals = r.vals ?? [];
  if (typeof val !== 'string') throw bad('"val" must be a string');
  if (!Array.isArray(vals) || vals.some((v) => typeof v !== 'string')) throw bad('"vals" must be an array of strings');
  if ((cmp === 'in' || cmp === 'nin') && vals.length === 0) throw bad(`"${cmp}" needs "vals"`);
  if (['lt', 'lte', 'gt', 'gte'].includes(cmp) && !Number.isFinite(Number(val)))
    throw bad(`"${cmp}" needs a numeric "val"`);
  return { op: 'leaf', key, cmp: cmp as Comparison, val, vals: vals as string[] };
}

/** Whether a publication's (or entry's) tags match the filter. */
export function matchesTags(f: TagsFilter, tags: Readonly<Record<string, string>> | undefined): boolean {
  switch (f.op) {
    case 'and':
      return f.nodes.every((n) => matchesTags(n, tags));
    case 'or':
      return f.nodes.some((n) => matchesTags(n, tags));
    case 'not':
      return !matchesTags(f.node, tags);
    case 'leaf': {
      const has = tags !== undefined && Object.hasOwn(tags, f.key);
      const v = has ? tags[f.key]! : undefined;
      switch (f.cmp) {
        case 'ex':
          return has;
        case 'nex':
          return !has;
        case 'neq':
          return v !== f.val;
        case 'nin':
          return v === undefined || !f.vals.includes(v);
        default:
          break;
      }
      if (v === undefined) return false;
      switch (f.cmp) {
        case 'eq':
          return v === f.val;
        case 'in':
          return f.vals.includes(v);
        case 'sw':
          return v.startsWith(f.val);
        case 'ew':
          return v.endsWith(f.val);
        case 'ct':
          return v.includes(f.val);
        default: {
          const a = Number(v);
          const b = Number(f.val);
          if (!Number.isFinite(a)) return false;
          return f.cmp === 'lt' ? a < b : f.cmp === 'lte' ? a <= b : f.cmp === 'gt' ? a > b : a >= b;
        }
      }
    }
  }
}
