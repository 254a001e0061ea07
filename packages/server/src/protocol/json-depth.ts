/**
 * Nesting depth of JSON, bounded where data enters Herald (client commands, the HTTP and in-process API, the
 * outbox). V8 parses deep JSON iteratively but serializes it recursively: arrays nested 30,000 deep (60 KB) parse
 * fine and then overflow the stack in JSON.stringify. Depth here: a scalar is 0, `[]` and `{}` are 1, `[[1]]` is 2.
 *
 * Both checks are iterative (no recursion, so no input can overflow them) and linear in the input's size.
 */

/** HERALD_MAX_JSON_DEPTH's default: far deeper than application data goes, far below what overflows the stack. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/** The message a client (107) or an API caller (400) gets; names the setting. */
export function depthMessage(maxDepth: number): string {
  return `bad request: JSON nested deeper than ${maxDepth} levels (HERALD_MAX_JSON_DEPTH): flatten the data`;
}

/**
 * The deepest nesting of `[` / `{` in JSON text, skipping string contents. One pass over the text; it stops as soon
 * as the depth passes `stopAbove`. It does not validate the text (JSON.parse does that).
 */
export function jsonTextDepth(text: string, stopAbove = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > stopAbove) return max;
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return max;
}

/** Why JSON text is too deep (a 107 / 400 message), or undefined. Linear scan of the raw text. */
export function jsonTextDepthProblem(text: string, maxDepth: number): string | undefined {
  return jsonTextDepth(text, maxDepth) > maxDepth ? depthMessage(maxDepth) : undefined;
}

/**
 * Why a value (parsed JSON, or data handed to the in-process API) is nested deeper than `maxDepth`, or undefined.
 * Iterative with an explicit stack; each object is visited once, so shared or cyclic references cannot make it loop
 * (a cycle is refused later by JSON.stringify as not serializable).
 */
export function jsonDepthProblem(value: unknown, maxDepth: number): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const seen = new Set<object>();
  const stack: [object, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > maxDepth) return depthMessage(maxDepth);
    if (seen.has(v)) continue;
    seen.add(v);
    const children: unknown[] = Array.isArray(v) ? v : Object.values(v);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return undefined;
}
