import { useState } from 'react';
import type { UseTokenLimits } from '@tokenmeter/react';
import { formatCount } from '../lib/format';
import { inProviderTab, problemText } from '../lib/providerTab';

const planName = (id: string) => id.charAt(0).toUpperCase() + id.slice(1);

// What the server's catalog sells: a button per paid plan (the free plan is
// the one no subscription gives, so it is never bought), a "Buy credits"
// button per credit pack, and the customer portal for a paying user. Each
// opens the payment provider in a new tab; the new plan or credits show up
// in the sidebar live, from the next verified receipt.
export function Billing({ limits }: { limits: UseTokenLimits }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const { catalog, plan } = limits;
  if (!catalog || !plan) return null;
  const paidPlans = catalog.plans.filter((p) => p.id !== 'free');
  const packs = catalog.packs ?? [];
  const redirectUrl = `${window.location.origin}/#/`;

  const run = async (what: string, open: (navigate: (url: string) => void) => Promise<string>) => {
    setBusy(what);
    setProblem(null);
    try {
      await inProviderTab(open);
    } catch (error) {
      setProblem(`${what === 'portal' ? 'The customer portal' : 'Checkout'} failed: ${problemText(error)}`);
    } finally {
      setBusy(null);
    }
  };
  const disabled = busy !== null || limits.offline;

  return (
    <section className="billing" aria-labelledby="billing-heading">
      <h2 id="billing-heading">Plans and credits</h2>
      <ul className="plan-options" data-testid="plan-picker">
        {paidPlans.map((option) => {
          const current = option.id === plan;
          return (
            <li key={option.id}>
              <button
                className={current ? 'plan-option current' : 'plan-option'}
                data-testid={`plan-option-${option.id}`}
                disabled={current || disabled}
                aria-current={current ? 'true' : undefined}
                onClick={() => run(option.id, (navigate) => limits.startCheckout({ plan: option.id, redirectUrl, navigate }))}
              >
                <span className="plan-option-name">
                  {current ? `${planName(option.id)} · your plan` : `${plan === 'free' ? 'Upgrade' : 'Switch'} to ${planName(option.id)}`}
                </span>
                <span className="small">
                  {formatCount(option.tokens_per_period)} tokens · {formatCount(option.avatars_per_period)} avatars a period
                </span>
              </button>
            </li>
          );
        })}
      </ul>
      {packs.map((pack) => (
        <button
          key={pack.id}
          data-testid={`buy-pack-${pack.id}`}
          disabled={disabled}
          onClick={() => run(pack.id, (navigate) => limits.startCheckout({ pack: pack.id, redirectUrl, navigate }))}
        >
          Buy credits · {formatCount(pack.tokens)} tokens
        </button>
      ))}
      {plan !== 'free' && (
        <button data-testid="manage-subscription" disabled={disabled} onClick={() => run('portal', (navigate) => limits.openPortal({ navigate }))}>
          {busy === 'portal' ? 'Opening the portal…' : 'Manage subscription'}
        </button>
      )}
      {busy !== null && busy !== 'portal' && <p className="muted small" role="status">Opening checkout…</p>}
      {problem && <p className="error" role="alert">{problem}</p>}
    </section>
  );
}
