// The app's one usage client: same origin as the demo server.
import { useTokenLimits } from './hooks/useTokenLimits';
import { accessToken } from './lib/session';

// Checkout opens in a new tab, so this tab stays and turns pro live when the
// subscription webhook lands (the stream pushes the new receipt).
const openCheckout = (url: string) => {
  window.open(url, '_blank');
};

export const limitsOptions = {
  baseUrl: '',
  getAccessToken: accessToken,
  navigate: openCheckout,
  reconnect: { initialMs: 500, maxMs: 4000 },
};

export const useLimits = () => useTokenLimits(limitsOptions);
