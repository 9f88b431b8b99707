import { useMemo, useState } from 'react';
import type { UseTokenLimits } from '@tokenmeter/react';
import type { ChatMessage } from '@tokenmeter/wasm';
import { accessToken } from '../lib/session';
import { formatCount } from '../lib/format';
import { streamChat } from '../lib/gatewayChat';
import { UpgradeButton } from './UpgradeButton';

// The reply budget each chat reserves: the max_tokens the gateway is asked for.
export const replyTokensMax = 200;

interface Turn { role: 'user' | 'assistant'; text: string; charged?: number; model?: string }

const multiplierText = (m: string) => (m.includes('/') ? String(Number(m.split('/')[0]) / Number(m.split('/')[1])) : m);

export function Chat({ limits }: { limits: UseTokenLimits }) {
  const models = useMemo(() => (limits.catalog?.models ?? []).filter((m) => m.operations.includes('chat')), [limits.catalog]);
  const [model, setModel] = useState('gpt-4o');
  const [draft, setDraft] = useState('');
  const [turns, setTurns] = useState<Turn[]>([]);
  const [sending, setSending] = useState(false);
  const [refusal, setRefusal] = useState<string | null>(null);

  const messages: ChatMessage[] = [{ role: 'user', content: draft }];
  const preview = draft.trim() === '' ? null : limits.estimate({ operation: 'chat', model, messages, maxOutputTokens: replyTokensMax });
  const selected = models.find((m) => m.id === model);
  const tooBig = preview !== null && !preview.fits;

  const send = async () => {
    if (!preview || tooBig || sending) return;
    setSending(true);
    setRefusal(null);
    const text = draft;
    const earlier = turns;
    const show = (reply: string, charged?: number) =>
      setTurns([...earlier, { role: 'user', text }, { role: 'assistant', text: reply, charged, model }]);
    try {
      // Streamed through the gateway (POST /v1/chat/completions), which
      // meters it: the reply grows as it arrives, the charge comes at its end.
      const outcome = await streamChat({
        token: await accessToken(),
        model,
        messages: [{ role: 'user', content: text }],
        maxTokens: replyTokensMax,
        onText: (reply) => show(reply),
      });
      if (!outcome.ok) {
        setRefusal(outcome.code === 'limit_exceeded' ? 'limit' : outcome.message);
        return;
      }
      show(outcome.text, outcome.chargedTokens);
      setDraft('');
    } catch (error) {
      setRefusal(error instanceof Error ? error.message : String(error));
    } finally {
      setSending(false);
    }
  };

  return (
    <section className="chat">
      <div className="turns" data-testid="turns">
        {turns.length === 0 && <p className="muted">Ask anything. Replies stream from the local OpenAI stand-in through tokenmeter's gateway, which meters them.</p>}
        {turns.map((turn, i) => (
          <div key={i} className={`turn ${turn.role}`}>
            <p>{turn.text}</p>
            {turn.charged !== undefined && <span className="muted small">{turn.model} · charged {formatCount(turn.charged)} tokens</span>}
          </div>
        ))}
      </div>
      <div className="composer">
        <div className="composer-row">
          <label>
            Model{' '}
            <select data-testid="model-picker" value={model} onChange={(e) => setModel(e.target.value)}>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id} — ×{multiplierText(m.multiplier)}{m.exact ? '' : ' (estimated count)'}
                </option>
              ))}
            </select>
          </label>
        </div>
        <textarea data-testid="composer" value={draft} rows={4} placeholder="Type a message…"
          onChange={(e) => { setDraft(e.target.value); setRefusal(null); }}
          onKeyDown={(e) => { if (e.key === 'Enter' && (e.metaKey || e.ctrlKey)) void send(); }} />
        <div className="composer-row">
          <p className={`preview ${tooBig ? 'over' : ''}`} data-testid="cost-preview">
            {preview && selected
              ? `≈ ${formatCount(preview.rawTokens)} tokens × ${multiplierText(selected.multiplier)} = ${formatCount(preview.chargedTokens)} · ${preview.remainingTokens >= 0 ? `${formatCount(preview.remainingTokens)} left` : `${formatCount(-preview.remainingTokens)} short`}`
              : draft.trim() === '' ? 'Type to see what this costs.' : 'Counting…'}
            {preview && !preview.exact && <span className="muted small"> (Claude counts are estimates)</span>}
            {preview && <span className="muted small"> incl. a {replyTokensMax}-token reply budget</span>}
          </p>
          <button data-testid="send" onClick={send} disabled={!preview || tooBig || sending || limits.offline}>
            {sending ? 'Sending…' : 'Send'}
          </button>
        </div>
        {(tooBig || refusal === 'limit') && (
          <div className="upgrade-prompt" data-testid="upgrade-prompt" role="alert">
            <p>
              This needs {preview ? formatCount(preview.chargedTokens) : 'more'} tokens but only{' '}
              {formatCount(limits.tokens?.remaining ?? 0)} are left on the {limits.plan} plan.
            </p>
            {limits.plan === 'free' ? (
              <UpgradeButton limits={limits} label="Upgrade to Pro for 10,000,000 tokens" />
            ) : (
              <p>Buy credits or switch plans under “Plans and credits”.</p>
            )}
          </div>
        )}
        {refusal && refusal !== 'limit' && <p className="error" role="alert">{refusal}</p>}
        {limits.offline && <p className="muted small">Offline: estimates still work; sending waits for the server.</p>}
      </div>
    </section>
  );
}
