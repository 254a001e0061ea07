/**
 * The request target of an HTTP request, parsed without throwing. Node hands the request line's target through as
 * is: origin-form (`/path?query`), absolute-form (`http://host/path`), `*`, or anything a peer typed. `new URL()`
 * rejects some of these (`//a:99999/`, `http://[/`) with an exception, which must never escape a request listener.
 */
export interface RequestTarget {
  /** The path, without query or fragment (`/connection/sse`). */
  path: string;
  query: URLSearchParams;
}

/** The target's path and query; undefined when it is neither origin-form nor a parsable absolute URL (answer 400). */
export function parseRequestTarget(url: string | undefined): RequestTarget | undefined {
  const target = url ?? '/';
  if (target.startsWith('/')) {
    // Origin-form: split by hand (`//a:99999/` is a path here, not a scheme-relative URL).
    const hash = target.indexOf('#');
    const noHash = hash < 0 ? target : target.slice(0, hash);
    const q = noHash.indexOf('?');
    return { path: q < 0 ? noHash : noHash.slice(0, q), query: new URLSearchParams(q < 0 ? '' : noHash.slice(q + 1)) };
  }
  if (!/^https?:\/\//i.test(target)) return undefined;
  try {
    const u = new URL(target);
    return { path: u.pathname, query: u.searchParams };
  } catch {
    return undefined;
  }
}

/** The path alone, or undefined for an unparsable target (see parseRequestTarget). */
export function requestPath(url: string | undefined): string | undefined {
  return parseRequestTarget(url)?.path;
}
