import { useMemo, useState, type DragEvent } from 'react';
import type { UseTokenLimits } from '@tokenmeter/react';
import { accessToken } from '../lib/session';
import { formatCount } from '../lib/format';
import { splitIntoChunks } from '../lib/chunks';

const model = 'text-embedding-3-small'; // cl100k_base, exact
const chunkTokensMax = 512;

// The first 80 characters (code points, so an emoji is never cut in half).
function excerpt(text: string): string {
  const characters = Array.from(text);
  return characters.length > 80 ? `${characters.slice(0, 80).join('')}…` : text;
}

interface Embedded { chunks: number; inputTokens: number; charged: number }

// A text or Markdown document, dropped, chosen or pasted: split into chunks,
// counted exactly in the browser, priced before anything is sent, then
// embedded through the demo backend (one `embedding` record).
export function Documents({ limits }: { limits: UseTokenLimits }) {
  const [text, setText] = useState('');
  const [name, setName] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [embedded, setEmbedded] = useState<Embedded | null>(null);

  // Non-null once the tokenizer is loaded (estimate loads it on first use).
  const ready = text.trim() === '' ? null : limits.estimate({ operation: 'embedding', model, text });
  const tokenizerReady = ready !== null;
  const chunks = useMemo(() => (tokenizerReady ? splitIntoChunks(text, model, chunkTokensMax) : []), [tokenizerReady, text]);
  const total = chunks.reduce((sum, chunk) => sum + chunk.tokens, 0);
  const price = chunks.length > 0 ? limits.estimate({ operation: 'embedding', model, inputTokens: total }) : null;

  const load = async (file: File | undefined) => {
    if (!file) return;
    setName(file.name);
    setText(await file.text());
    setEmbedded(null);
  };
  const onDrop = (event: DragEvent<HTMLElement>) => {
    event.preventDefault();
    void load(event.dataTransfer.files[0]);
  };
  const embed = async () => {
    setBusy(true);
    setProblem(null);
    try {
      const response = await fetch('/demo/embed', {
        method: 'POST',
        headers: { Authorization: `Bearer ${await accessToken()}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ model, chunks: chunks.map((chunk) => chunk.text) }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
      setEmbedded({ chunks: body.chunks.length, inputTokens: body.input_tokens, charged: body.charged_tokens });
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="documents" onDragOver={(event) => event.preventDefault()} onDrop={onDrop} aria-labelledby="documents-title">
      <h2 id="documents-title">Documents</h2>
      <p className="muted">Drop a text or Markdown file here, choose one, or paste. It is split into chunks of at most
        {' '}{chunkTokensMax} tokens and counted exactly in your browser before anything is sent.</p>
      <label className="file-pick">
        <span>Choose a file</span>
        <input type="file" accept=".txt,.md,.markdown,text/plain,text/markdown" data-testid="doc-file"
          onChange={(event) => void load(event.target.files?.[0])} />
      </label>
      <label htmlFor="doc-text">Document text{name ? ` (${name})` : ''}</label>
      <textarea id="doc-text" data-testid="doc-text" rows={8} value={text}
        onChange={(event) => { setText(event.target.value); setName(null); setEmbedded(null); }} />
      {text.trim() !== '' && (
        <p className="preview" data-testid="doc-preview" aria-live="polite">
          {price
            ? `${chunks.length} chunks · ${formatCount(total)} tokens (cl100k_base, exact) · ≈ ${formatCount(price.chargedTokens)} tokens charged · ${formatCount(price.remainingTokens)} left after`
            : 'Counting…'}
        </p>
      )}
      {chunks.length > 0 && (
        <div className="chunks-scroll" role="region" aria-label="Chunks" tabIndex={0}>
        <ol className="chunks" data-testid="doc-chunks">
          {chunks.map((chunk, index) => (
            <li key={index}><span className="muted small">{formatCount(chunk.tokens)} tokens</span> {excerpt(chunk.text)}</li>
          ))}
        </ol>
        </div>
      )}
      <button data-testid="doc-embed" onClick={embed} disabled={busy || !price || !price.fits || limits.offline}>
        {busy ? 'Embedding…' : 'Embed'}
      </button>
      {price && !price.fits && <p className="error" role="alert">This document needs more tokens than are left.</p>}
      {embedded && (
        <p data-testid="doc-result" role="status">
          Embedded {embedded.chunks} chunks: {formatCount(embedded.inputTokens)} tokens counted by the server, {formatCount(embedded.charged)} charged.
        </p>
      )}
      {problem && <p className="error" role="alert">{problem}</p>}
    </section>
  );
}
