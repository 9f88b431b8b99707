import type { Threshold } from '@tokenmeter/react';
import { formatCount } from '../lib/format';

interface Props {
  label: string;
  testId: string;
  used: number;
  reserved: number;
  /** What the period can spend: the plan's limit plus credits. */
  capacity: number;
  /** The hook's `remaining` (from the verified receipt), never re-derived here. */
  remaining: number;
  /** Purchased tokens included in `capacity`; negative is a debt. */
  credits?: number;
  /** Usage alerts to mark on the bar (percent of capacity). */
  thresholds?: Threshold[];
}

// A quota bar: used solid, reserved hatched, a tick per usage alert (filled
// once reached), the remaining count, and a line that says when an alert
// is reached.
export function Bar({ label, testId, used, reserved, capacity, remaining, credits = 0, thresholds = [] }: Props) {
  const pct = (n: number) => `${capacity > 0 ? Math.min(100, (n / capacity) * 100) : n > 0 ? 100 : 0}%`;
  const reached = thresholds.filter((t) => t.reached);
  const highest = reached[reached.length - 1];
  return (
    <div className="quota" data-testid={testId}>
      <div className="quota-head">
        <span>{label}</span>
        <span data-testid={`${testId}-remaining`}>{formatCount(remaining)} left</span>
      </div>
      <div
        className="bar"
        role="progressbar"
        aria-label={`${label} used and reserved`}
        aria-valuetext={`${formatCount(used + reserved)} of ${formatCount(capacity)} used or reserved, ${formatCount(remaining)} left`}
        aria-valuemin={0}
        aria-valuemax={Math.max(0, capacity)}
        aria-valuenow={Math.min(used + reserved, Math.max(0, capacity))}
      >
        <div className="bar-used" style={{ width: pct(used) }} />
        <div className="bar-reserved" style={{ width: pct(reserved) }} />
        {/* Alerts above 100 % (a runaway report) have no place on a full bar; the line below still names them. */}
        {thresholds.filter((t) => t.percent <= 100).map((t) => (
          <span
            key={t.percent}
            className={`bar-mark${t.reached ? ' reached' : ''}`}
            style={{ left: `calc(${t.percent}% - 2px)` }}
            data-testid={`${testId}-mark-${t.percent}`}
            data-reached={t.reached}
          />
        ))}
      </div>
      <div className="quota-foot">
        {formatCount(used)} of {formatCount(capacity)} used{credits !== 0 ? ` (plan ${credits > 0 ? '+' : '−'} credits)` : ''}
        {reserved > 0 ? ` · ${formatCount(reserved)} reserved` : ''}
      </div>
      {thresholds.length > 0 && (
        <p className={`quota-alerts${highest ? ' reached' : ''}`} data-testid={`${testId}-alerts`} role="status">
          {highest
            ? `${highest.percent} % of your ${label.toLowerCase()} used${highest.percent >= 100 ? ': nothing more can be spent until credits or the next period' : ''}`
            : `Alerts at ${thresholds.map((t) => `${t.percent} %`).join(' and ')}`}
        </p>
      )}
    </div>
  );
}
