import { formatCount } from '../lib/format';

interface Props { label: string; used: number; reserved: number; limit: number; testId: string }

// A quota bar: used solid, reserved hatched, with the remaining count.
export function Bar({ label, used, reserved, limit, testId }: Props) {
  const pct = (n: number) => `${limit > 0 ? Math.min(100, (n / limit) * 100) : 0}%`;
  const remaining = Math.max(0, limit - used - reserved);
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
        aria-valuetext={`${formatCount(used + reserved)} of ${formatCount(limit)} used or reserved, ${formatCount(remaining)} left`}
        aria-valuemin={0}
        aria-valuemax={limit}
        aria-valuenow={used + reserved}
      >
        <div className="bar-used" style={{ width: pct(used) }} />
        <div className="bar-reserved" style={{ width: pct(reserved) }} />
      </div>
      <div className="quota-foot">
        {formatCount(used)} of {formatCount(limit)} used{reserved > 0 ? ` · ${formatCount(reserved)} reserved` : ''}
      </div>
    </div>
  );
}
