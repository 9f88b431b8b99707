import { useState } from 'react';
import type { UseTokenLimits } from '../hooks/useTokenLimits';

export function UpgradeButton({ limits, label = 'Upgrade to Pro' }: { limits: UseTokenLimits; label?: string }) {
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const upgrade = async () => {
    setBusy(true);
    setProblem(null);
    try {
      await limits.startCheckout();
    } catch (error) {
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
