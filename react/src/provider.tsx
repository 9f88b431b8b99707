// <TokenLimitsProvider> and useTokenLimits() (DESIGN.md §10): a thin React
// shell over TokenLimitsClient, the TanStack react-query / query-core split.
//
// The provider owns ONE client, keyed by base URL and user. It is created and
// started in an effect, so a server render (renderToString) and the first
// client render create nothing, fetch nothing and start no timer: both show
// status 'loading' and hydrate alike. The client is stopped on unmount and
// when the key changes. There is no module-level map of clients: on a server
// that would share one user's state with every request.
import { createContext, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import type { EstimateInput } from '@tokenmeter/wasm';
import {
  initialState, TokenLimitsClient, TokenLimitsError,
  type CheckoutRequest, type EstimateWithBalance, type NavigateOptions, type TokenLimitsOptions, type TokenLimitsState,
} from './tokenLimitsClient.js';

export interface TokenLimitsProviderProps extends TokenLimitsOptions {
  /**
   * Who the balance belongs to (a user id). A change stops the client and
   * starts a new one, so one user's numbers are never shown to the next.
   * Leave it out when the access token alone says who the user is and a new
   * user always means a new page.
   */
  userKey?: string | null;
  children?: ReactNode;
}

/** What useTokenLimits() returns: the state (a union on `status`) and its actions. */
export type UseTokenLimits = TokenLimitsState & {
  /** The charge and the balance after it; null while loading (then re-rendered when ready) or on the server. */
  estimate(input: EstimateInput): EstimateWithBalance | null;
  /** estimate(input)?.fits, false while unknown. */
  canAfford(input: EstimateInput): boolean;
  /** Fetches the snapshot now; rejects with code 'not_started' before the provider's effect ran. */
  refresh(): Promise<void>;
  /**
   * POST /v1/me/checkout and navigate to the payment page: `{ plan }` (a
   * catalog plan; no argument or no plan: pro) or `{ pack }` (a catalog
   * credit pack), with optional `redirectUrl` and `navigate`. Resolves with
   * the URL; the plan or the credits arrive later, live, when the payment
   * provider's webhook reaches the server.
   */
  startCheckout(request?: CheckoutRequest): Promise<string>;
  /**
   * POST /v1/me/portal and navigate to the payment provider's customer
   * portal (change or cancel the plan, invoices). Resolves with the URL;
   * rejects with code 'no_subscription' when the user never subscribed.
   */
  openPortal(options?: NavigateOptions): Promise<string>;
};

const TokenLimitsContext = createContext<TokenLimitsClient | null | undefined>(undefined);

export function TokenLimitsProvider({ children, userKey, ...options }: TokenLimitsProviderProps) {
  const [client, setClient] = useState<TokenLimitsClient | null>(null);
  // The newest options, read when the key changes; the token getter is also
  // handed to the running client, so a re-rendered parent's source is used.
  const latest = useRef(options);
  latest.current = options;
  useEffect(() => {
    const created = new TokenLimitsClient(latest.current);
    setClient(created);
    void created.start();
    return () => {
      created.stop();
      setClient((current) => (current === created ? null : current));
    };
  }, [options.baseUrl, userKey]);
  useEffect(() => client?.setAccessTokenGetter(options.getAccessToken), [client, options.getAccessToken]);
  return <TokenLimitsContext.Provider value={client}>{children}</TokenLimitsContext.Provider>;
}

const noSubscription = () => () => undefined;
const loadingState = () => initialState;
const notStarted = () => Promise.reject(new TokenLimitsError('not_started', 'the token limits client has not started yet'));

/**
 * The user's plan limits, live and verified. A discriminated union on
 * `status`: 'loading' (also during a server render), 'error' (the wasm or the
 * server's keys could not be loaded; retried with backoff), 'ready' (tokens,
 * avatars, plan and period are non-null).
 */
export function useTokenLimits(): UseTokenLimits {
  const client = useContext(TokenLimitsContext);
  if (client === undefined) throw new Error('useTokenLimits() needs a <TokenLimitsProvider> above it');
  const state = useSyncExternalStore(client?.subscribe ?? noSubscription, client?.getState ?? loadingState, loadingState);
  // Recreated per state so memoized children re-run estimate when the balance changes.
  return useMemo((): UseTokenLimits => {
    if (!client) {
      return { ...state, estimate: () => null, canAfford: () => false, refresh: notStarted, startCheckout: notStarted, openPortal: notStarted };
    }
    return {
      ...state,
      estimate: client.estimate,
      canAfford: client.canAfford,
      refresh: () => client.refresh(),
      startCheckout: (request?: CheckoutRequest) => client.startCheckout(request),
      openPortal: (options?: NavigateOptions) => client.openPortal(options),
    };
  }, [state, client]);
}
