// The app's one usage client: same origin as the demo server.
import { useTokenLimits } from './hooks/useTokenLimits';
import { accessToken } from './lib/session';

export const limitsOptions = {
  baseUrl: '',
  getAccessToken: accessToken,
  reconnect: { initialMs: 500, maxMs: 4000 },
};

export const useLimits = () => useTokenLimits(limitsOptions);
