'use client';
import { createContext, createElement, useContext, useEffect, useState, type ReactNode } from 'react';
import { createHeraldClient, type ConnectionState, type HeraldClient, type HeraldClientOptions } from '@herald/client';

interface HeraldContextValue {
  client: HeraldClient | null;
  state: ConnectionState;
}

const HeraldContext = createContext<HeraldContextValue | null>(null);

export interface HeraldProviderProps extends HeraldClientOptions {
  children?: ReactNode;
  /** Connect as soon as the provider mounts. @default true */
  autoConnect?: boolean;
}

/**
 * Owns one Herald client for the tree below it. SSR-safe: the client is created in an effect, so nothing connects
 * (or touches `window`) while rendering on the server; until then hooks see `client: null` and state 'connecting'.
 * Options are read when the provider mounts; remount it (change its `key`) to apply new ones.
 */
export function HeraldProvider({ children, autoConnect = true, ...options }: HeraldProviderProps): ReactNode {
  const [value, setValue] = useState<HeraldContextValue>({ client: null, state: 'connecting' });
  useEffect(() => {
    const client = createHeraldClient(options);
    const off = client.onState((state) => setValue({ client, state }));
    if (autoConnect) client.connect();
    // After connect(), so the first state shown is 'connecting', not a flash of 'disconnected'.
    setValue({ client, state: client.state });
    return () => {
      off();
      client.disconnect();
    };
    // Options are taken once per mount, on purpose: a new object each render must not reconnect.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return createElement(HeraldContext.Provider, { value }, children);
}

function useHeraldContext(hook: string): HeraldContextValue {
  const v = useContext(HeraldContext);
  if (!v) throw new Error(`${hook} must be used inside <HeraldProvider>`);
  return v;
}

/** The client, or null before the provider has mounted (and always on the server). */
export function useHerald(): HeraldClient | null {
  return useHeraldContext('useHerald').client;
}

/** 'connecting' (first attempt), 'connected', or 'disconnected' (lost or failed; the SDK may be retrying). */
export function useConnectionState(): ConnectionState {
  return useHeraldContext('useConnectionState').state;
}
