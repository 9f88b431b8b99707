import { useState } from 'react';
import type { UseTokenLimits } from '@tokenmeter/react';
import { inProviderTab, problemText } from '../lib/providerTab';

// Checkout of a plan (pro unless `plan` names another) in a new tab.
export function UpgradeButton({ limits, label = 'Upgrade to Pro', plan }: { limits: UseTokenLimits; label?: string; plan?: string }) {
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const upgrade = async () => {
    setBusy(true);
    setProblem(null);
    try {
      await inProviderTab((navigate) => limits.startCheckout({ plan, redirectUrl: `${window.location.origin}/#/`, navigate }));
    } catch (error) {
      setProblem(problemText(error));
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
