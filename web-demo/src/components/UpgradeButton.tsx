import { useState } from 'react';
import type { UseTokenLimits } from '@tokenmeter/react';

export function UpgradeButton({ limits, label = 'Upgrade to Pro' }: { limits: UseTokenLimits; label?: string }) {
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // Checkout runs in a new tab, opened inside the click (so no popup blocker
  // objects); this tab stays and turns pro live when the webhook lands.
  const upgrade = async () => {
    setBusy(true);
    setProblem(null);
    const tab = window.open('', '_blank');
    try {
      await limits.startCheckout({
        redirectUrl: `${window.location.origin}/#/`,
        navigate: (url) => (tab ? tab.location.assign(url) : window.location.assign(url)),
      });
    } catch (error) {
      tab?.close();
      setProblem(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button className="upgrade" data-testid="upgrade-button" onClick={upgrade} disabled={busy || limits.offline}>
        {busy ? 'Opening checkout…' : label}
      </button>
      {problem && <p className="error" role="alert">Checkout failed: {problem}</p>}
    </>
  );
}
