// useTokenCount(text, model): the token count of `text` for `model`, with the
// wasm tokenizer (exact for OpenAI models, an estimate for Claude).
//
// Loading happens in an effect (never during a render, so a server render
// only ever says 'loading'). A failed load is not asked for again on the next
// render: @tokenmeter/wasm hands back the same rejection until its retryAt
// (backoff doubling from 1 s to a 60 s cap), and this hook retries once, at
// that time, with a timer cleared on unmount.
import { useEffect, useMemo, useState } from 'react';
import * as tm from '@tokenmeter/wasm';
import { describe } from './tokenLimitsClient.js';

export type TokenCountResult =
  | { status: 'loading'; tokens: null; exact: null; error: null }
  | { status: 'ready'; tokens: number; exact: boolean; error: null }
  | { status: 'error'; tokens: null; exact: null; error: { code: string; message: string } };

type Load =
  | { model: string; status: 'loading' | 'ready' }
  | { model: string; status: 'error'; error: { code: string; message: string } };

const loading: TokenCountResult = { status: 'loading', tokens: null, exact: null, error: null };

export function useTokenCount(text: string, model: string): TokenCountResult {
  const [load, setLoad] = useState<Load>({ model, status: 'loading' });
  useEffect(() => {
    let current = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const attempt = () => {
      tm.init().then(() => tm.loadTokenizer(model)).then(
        () => current && setLoad({ model, status: 'ready' }),
        (error: unknown) => {
          if (!current) return;
          setLoad({ model, status: 'error', error: describe(error) });
          const retryAt = (error as { retryAt?: unknown } | null)?.retryAt;
          if (typeof retryAt === 'number') timer = setTimeout(attempt, Math.max(0, retryAt - Date.now()));
        },
      );
    };
    attempt();
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [model]);

  const ready = load.model === model && load.status === 'ready';
  const counted = useMemo((): TokenCountResult | null => {
    if (!ready) return null;
    try {
      const { tokens, exact } = tm.countTokens(text, model);
      return { status: 'ready', tokens, exact, error: null };
    } catch (error) {
      return { status: 'error', tokens: null, exact: null, error: describe(error) };
    }
  }, [ready, text, model]);
  if (counted) return counted;
  if (load.model === model && load.status === 'error') return { status: 'error', tokens: null, exact: null, error: load.error };
  return loading;
}
