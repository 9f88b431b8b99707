import { useEffect, useState } from 'react';
import type { UseTokenLimits } from '@tokenmeter/react';
import { Bar } from './Bar';
import { AvatarButton } from './AvatarButton';
import { Billing } from './Billing';
import { formatAge, formatCount, formatDate } from '../lib/format';

// Re-renders every second so "verified 12s ago" stays honest.
function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

export function Sidebar({ limits }: { limits: UseTokenLimits }) {
  const now = useNow();
  const { plan, tokens, avatars, credits, thresholds, period, verified, chainVerified, chain, offline, live, chainBroken, asOf, verifiedAt } = limits;
  return (
    <aside className="sidebar">
      <h1>tokenmeter <span className="muted">demo</span></h1>
      <div className="plan-row">
        <span className={`plan plan-${plan ?? 'unknown'}`} data-testid="plan">{plan ?? '…'}</span>
        {verified && chainVerified ? (
          <span className="badge verified" data-testid="verified-badge" title="Balance from a receipt whose signature this page checked in WebAssembly">✓ verified</span>
        ) : verified && !chainBroken ? (
          <span className="badge unverified" data-testid="chain-gap-badge" title="Signed by the server, but changes before it never reached this page">signed · gap</span>
        ) : (
          <span className="badge unverified" data-testid="unverified-badge">not verified</span>
        )}
        {offline ? (
          <span className="badge offline" data-testid="offline-indicator">offline</span>
        ) : live ? (
          <span className="badge live" data-testid="live-indicator">live</span>
        ) : (
          <span className="badge stale">connecting…</span>
        )}
      </div>
      {chainBroken && <p className="warning" data-testid="chain-warning">A receipt did not chain to the one before it.</p>}
      {!chainBroken && !chainVerified && <p className="warning" data-testid="chain-gap-warning">Some changes {chain === 'gap' ? 'just before this balance' : 'earlier'} never reached this page; the balance is signed, the history in between is not verified here.</p>}
      {limits.error?.code === 'receipt_invalid' && <p className="warning">A receipt failed verification and was ignored.</p>}
      {tokens && avatars ? (
        <>
          <Bar label="Tokens" testId="tokens" used={tokens.used} reserved={tokens.reserved} capacity={tokens.capacity}
            remaining={tokens.remaining} credits={tokens.credits} thresholds={thresholds} />
          <p className="credits" data-testid="credits">
            {credits !== null && credits < 0
              ? `Credits: ${formatCount(-credits)} tokens owed (refunded after they were spent)`
              : `Credits: ${formatCount(credits ?? 0)} tokens`}
          </p>
          <Bar label="Avatars" testId="avatars" used={avatars.used} reserved={avatars.reserved} capacity={avatars.capacity}
            remaining={avatars.remaining} />
          {period && <p className="muted" data-testid="period-end">Period ends {formatDate(period.end)}</p>}
        </>
      ) : (
        <p className="muted">Loading your balance…</p>
      )}
      <p className="freshness muted" data-testid="freshness">
        {offline ? 'Last verified balance' : 'Balance'}
        {asOf !== null ? ` as of ${new Date(asOf).toLocaleTimeString('en-GB', { timeZone: 'UTC' })} UTC` : ''}
        {verifiedAt !== null ? ` · changed ${formatAge(now - verifiedAt)}` : ''}
      </p>
      <div className="actions">
        <AvatarButton limits={limits} />
        <Billing limits={limits} />
      </div>
    </aside>
  );
}
