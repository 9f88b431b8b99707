import { useEffect, useState } from 'react';
import { accessToken } from '../lib/session';
import { formatCount } from '../lib/format';
import { Statement } from './Statement';

interface Group { key: string; events: number; charged_tokens: number }
interface UsageEvent { id: number | string; operation: string; model: string; input_tokens: number; output_tokens: number; charged_tokens: number; created_at: string }

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${await accessToken()}` }, cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

function BarChart({ title, groups, testId }: { title: string; groups: Group[]; testId: string }) {
  const max = Math.max(1, ...groups.map((g) => g.charged_tokens));
  return (
    <figure className="chart" data-testid={testId}>
      <figcaption>{title}</figcaption>
      {groups.length === 0 && <p className="muted">No usage yet this period.</p>}
      {groups.map((g) => (
        <div className="chart-row" key={g.key}>
          <span className="chart-key">{g.key || '(no model: avatars)'}</span>
          <span className="chart-bar" style={{ width: `${(g.charged_tokens / max) * 100}%` }} />
          <span className="chart-value">{formatCount(g.charged_tokens)}</span>
        </div>
      ))}
    </figure>
  );
}

// Charts by day and by model, and the event list; refetched whenever the
// verified balance changes (seq), so it follows the stream.
export function UsagePage({ seq, offline }: { seq: number; offline: boolean }) {
  const [byDay, setByDay] = useState<Group[]>([]);
  const [byModel, setByModel] = useState<Group[]>([]);
  const [events, setEvents] = useState<UsageEvent[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    if (offline) return;
    let current = true;
    Promise.all([
      getJson<{ groups: Group[] }>('/v1/me/usage/summary?group_by=day'),
      getJson<{ groups: Group[] }>('/v1/me/usage/summary?group_by=model'),
      getJson<{ events: UsageEvent[] }>('/v1/me/usage/events?limit=50'),
    ]).then(([day, model, list]) => {
      if (!current) return;
      setByDay(day.groups);
      setByModel(model.groups);
      setEvents(list.events);
      setProblem(null);
    }, (error) => current && setProblem(String(error)));
    return () => { current = false; };
  }, [seq, offline]);

  return (
    <section className="usage">
      {problem && <p className="error">{problem}</p>}
      <Statement />
      <div className="charts">
        <BarChart title="Charged tokens by day" groups={byDay} testId="chart-day" />
        <BarChart title="Charged tokens by model" groups={byModel} testId="chart-model" />
      </div>
      {/* Scrolls sideways on a phone: a region keyboard users can focus and scroll. */}
      <div className="events-scroll" role="region" aria-label="Usage events" tabIndex={0}>
      <table className="events" data-testid="events">
        <thead>
          <tr><th>When (UTC)</th><th>Operation</th><th>Model</th><th>Input</th><th>Output</th><th>Charged</th></tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id}>
              <td>{e.created_at.replace('T', ' ').replace('Z', '')}</td>
              <td>{e.operation}</td>
              <td>{e.model || '—'}</td>
              <td>{formatCount(e.input_tokens)}</td>
              <td>{formatCount(e.output_tokens)}</td>
              <td>{formatCount(e.charged_tokens)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
    </section>
  );
}
