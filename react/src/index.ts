// @tokenmeter/react: the user's plan limits in React (DESIGN.md §10).
//
//   <TokenLimitsProvider baseUrl="" getAccessToken={getToken} userKey={userId}>
//     <App />
//   </TokenLimitsProvider>
//
//   const limits = useTokenLimits();
//   if (limits.status === 'error') return <p>{limits.error.message}</p>;
//   if (limits.status === 'loading') return <p>Loading…</p>;
//   return <p>{limits.tokens.remaining} tokens left</p>;
export { TokenLimitsProvider, useTokenLimits } from './provider.js';
export type { TokenLimitsProviderProps, UseTokenLimits } from './provider.js';
export { useTokenCount } from './useTokenCount.js';
export type { TokenCountResult } from './useTokenCount.js';
export { TokenLimitsClient, TokenLimitsError, initialState, defaultThresholdPercents } from './tokenLimitsClient.js';
export type {
  Chain, CheckoutOptions, CheckoutRequest, EstimateWithBalance, LockManagerLike, NavigateOptions, Quota, Status, StorageLike, Threshold,
  TokenLimitsFields, TokenLimitsOptions, TokenLimitsState,
} from './tokenLimitsClient.js';
export { readEventStream, parseEventBlock } from './sse.js';
export type { SseEvent } from './sse.js';
