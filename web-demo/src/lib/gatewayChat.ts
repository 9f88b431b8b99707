// A chat completion streamed through tokenmeter's gateway, read as Server-
// Sent Events: each `data:` chunk's delta text as it arrives, and at the end
// the gateway's comment lines with the charge and the receipt.

export interface StreamChatRequest {
  token: string | null;
  model: string;
  messages: { role: 'user' | 'assistant' | 'system'; content: string }[];
  maxTokens: number;
  onText: (textSoFar: string) => void;
}

export type StreamChatOutcome =
  | { ok: true; text: string; chargedTokens?: number; receipt?: string; usageSource?: string }
  | { ok: false; status: number; code?: string; message: string };

// One SSE event's data and comment lines.
function readEvent(event: string, state: { text: string; comments: Record<string, string> }) {
  for (const line of event.split('\n')) {
    if (line.startsWith('data: ') && line !== 'data: [DONE]') {
      try {
        const chunk = JSON.parse(line.slice(6));
        for (const choice of chunk.choices ?? []) state.text += choice.delta?.content ?? '';
      } catch {
        // Not JSON: nothing to show.
      }
    } else if (line.startsWith(': ')) {
      const colon = line.indexOf(': ', 2);
      if (colon > 0) state.comments[line.slice(2, colon)] = line.slice(colon + 2);
    }
  }
}

export async function streamChat(request: StreamChatRequest): Promise<StreamChatOutcome> {
  const response = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { ...(request.token ? { Authorization: `Bearer ${request.token}` } : {}), 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: request.model, messages: request.messages, max_tokens: request.maxTokens, stream: true }),
  });
  if (!response.ok || !response.body) {
    const body = await response.json().catch(() => null);
    return { ok: false, status: response.status, code: body?.error?.code, message: body?.error?.message ?? `HTTP ${response.status}` };
  }
  const state = { text: '', comments: {} as Record<string, string> };
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replaceAll('\r\n', '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      readEvent(buffer.slice(0, end), state);
      buffer = buffer.slice(end + 2);
      request.onText(state.text);
    }
  }
  const charged = state.comments['X-Tokenmeter-Charged-Tokens'];
  return {
    ok: true,
    text: state.text,
    chargedTokens: charged === undefined ? undefined : Number(charged),
    receipt: state.comments['X-Tokenmeter-Receipt'],
    usageSource: state.comments['X-Tokenmeter-Usage-Source'],
  };
}
