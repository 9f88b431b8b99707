// The app's usage client settings: same origin as the demo server (main.tsx
// hands them to <TokenLimitsProvider>).
import { accessToken } from './lib/session';

export const limitsOptions = {
  baseUrl: '',
  getAccessToken: accessToken,
  reconnect: { initialMs: 500, maxMs: 4000 },
};
