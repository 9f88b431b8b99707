// useTokenLimits: the user's plan limits, live and verified (DESIGN.md §10).
// A thin React shell over TokenLimitsClient (SWR / TanStack Query shape): one
// client per baseUrl shared by every component, read with
// useSyncExternalStore so renders never tear.
import { useCallback, useEffect, useMemo, useSyncExternalStore } from 'react';
import { TokenLimitsClient, type CheckoutOptions, type TokenLimitsOptions, type TokenLimitsState, type EstimateWithBalance } from '../lib/tokenLimitsClient';
import type { EstimateInput } from '../lib/wasm';

export type { TokenLimitsState, EstimateWithBalance };

export interface UseTokenLimits extends TokenLimitsState {
  estimate(input: EstimateInput): EstimateWithBalance | null;
  canAfford(input: EstimateInput): boolean;
  refresh(): Promise<void>;
  startCheckout(options?: CheckoutOptions): Promise<string>;
}

const clients = new Map<string, TokenLimitsClient>();

// The shared client for an app (created and started on first use).
export function tokenLimitsClient(options: TokenLimitsOptions): TokenLimitsClient {
  let client = clients.get(options.baseUrl);
  if (!client) {
    client = new TokenLimitsClient(options);
    clients.set(options.baseUrl, client);
    void client.start();
  } else {
    client.setAccessTokenGetter(options.getAccessToken);
  }
  return client;
}

export function useTokenLimits(options: TokenLimitsOptions): UseTokenLimits {
  const client = tokenLimitsClient(options);
  const state = useSyncExternalStore(client.subscribe, client.getState, client.getState);
  // The newest getter wins, so a re-rendered parent's token source is used.
  useEffect(() => client.setAccessTokenGetter(options.getAccessToken), [client, options.getAccessToken]);
  const refresh = useCallback(() => client.refresh(), [client]);
  const startCheckout = useCallback((options?: CheckoutOptions) => client.startCheckout(options), [client]);
  // estimate/canAfford read the current state; recreated per state so memoized
  // children re-run them when the balance changes.
  return useMemo(
    () => ({ ...state, estimate: client.estimate, canAfford: client.canAfford, refresh, startCheckout }),
    [state, client, refresh, startCheckout],
  );
}
