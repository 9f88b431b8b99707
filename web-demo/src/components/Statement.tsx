import { useState } from 'react';
import { verifyStatement } from '@tokenmeter/wasm';
import { accessToken } from '../lib/session';
import { formatCount } from '../lib/format';

async function fetchText(path: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.text();
}

function download(name: string, type: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// This period's statement: every charge with the receipts behind it, checked
// here in wasm (the same verifier as `tokenmeter verify`) against the
// server's keys before it is offered, and downloadable as JSON or CSV.
export function Statement() {
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const get = async (format: 'json' | 'csv') => {
    setBusy(true);
    try {
      const auth = { Authorization: `Bearer ${await accessToken()}` };
      if (format === 'csv') {
        download('statement.csv', 'text/csv', await fetchText('/v1/me/statement?format=csv', auth));
        return;
      }
      const [statement, keys] = await Promise.all([fetchText('/v1/me/statement', auth), fetchText('/v1/keys')]);
      const verdict = verifyStatement(statement, keys);
      if (!verdict.valid) {
        setStatus({ ok: false, text: `Statement refused: ${verdict.code}: ${verdict.message}` });
        return;
      }
      setStatus({
        ok: true,
        text: `Statement verified in your browser: ${verdict.receipts} receipts, ${verdict.charges} charges, ${formatCount(verdict.tokensUsed)} tokens used`,
      });
      download('statement.json', 'application/json', statement);
    } catch (error) {
      setStatus({ ok: false, text: error instanceof Error ? error.message : String(error) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="statement">
      <button data-testid="statement-json" onClick={() => void get('json')} disabled={busy}>Verify and download statement (JSON)</button>
      <button data-testid="statement-csv" onClick={() => void get('csv')} disabled={busy}>Download statement (CSV)</button>
      {status && <p data-testid="statement-status" role="status" className={status.ok ? '' : 'error'}>{status.text}</p>}
    </div>
  );
}
