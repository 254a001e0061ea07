import { useEffect, useReducer } from 'react';
import type { Live } from './live';

/** Re-renders the component whenever the live connection has news (a snapshot, a state change). */
export function useLive(live: Live): Live {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => live.subscribe(bump), [live]);
  return live;
}
