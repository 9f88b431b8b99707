import { useState } from 'react';
import type { UseTokenLimits } from '@tokenmeter/react';
import { accessToken } from '../lib/session';
import { formatCount } from '../lib/format';

// Spends one avatar (and its flat token price) through the demo backend.
export function AvatarButton({ limits }: { limits: UseTokenLimits }) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const cost = limits.estimate({ operation: 'avatar' });
  const affordable = cost?.fits ?? false;
  const make = async () => {
    setBusy(true);
    setProblem(null);
    try {
      const response = await fetch('/demo/avatar', { method: 'POST', headers: { Authorization: `Bearer ${await accessToken()}`, 'Content-Type': 'application/json' }, body: '{}' });
      if (!response.ok) setProblem(((await response.json()) as { error?: { message?: string } }).error?.message ?? `HTTP ${response.status}`);
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button data-testid="avatar-button" onClick={make} disabled={busy || !affordable || limits.offline}
        title={cost ? `${formatCount(cost.chargedTokens)} tokens and 1 avatar` : undefined}>
        {busy ? 'Generating…' : 'Generate avatar'}
        {cost && <span className="muted small"> · {formatCount(cost.chargedTokens)} tokens</span>}
      </button>
      {problem && <p className="error" role="alert">{problem}</p>}
    </>
  );
}
