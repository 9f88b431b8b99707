// The OpenAI stand-in (tools/openai-standin) as the official `openai` npm
// package sees it: if the SDK parses its replies, streams and embeddings, the
// gateway tested against the stand-in is tested against OpenAI's wire format,
// not against the stand-in's own idea of it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { spawnListening } from '../support/spawn_listening.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const binary = path.join(root, 'build/native/tools/openai-standin/openai_standin');
const apiKey = 'sk-interop-standin-key';
let standin;
let client;

before(async () => {
  const started = await spawnListening(binary, ['--listen', '127.0.0.1:0', '--api-key', apiKey]);
  standin = started.child;
  client = new OpenAI({ apiKey, baseURL: `${started.url}/v1`, maxRetries: 0 });
});

after(() => {
  standin?.kill('SIGTERM');
});

test('chat.completions.create without streaming', async () => {
  const completion = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'three little words' }],
  });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices[0].message.content, 'Echo: three little words');
  assert.equal(completion.choices[0].finish_reason, 'stop');
  // ceil(18 bytes / 4) = 5; one completion token per word.
  assert.deepEqual(completion.usage, { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
});

test('chat.completions.create streaming with include_usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'three little words' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.choices.length > 0) text += chunk.choices[0].delta.content ?? '';
    else usage = chunk.usage;
  }
  assert.equal(text, 'Echo: three little words');
  assert.equal(chunks, 7); // role, 4 words, finish, usage
  assert.deepEqual(usage, { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
});

test('a cut stream is an error to the SDK, not a finished reply', async () => {
  const stream = await client.chat.completions.create(
    { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a b c d e f' }], stream: true },
    { headers: { 'X-Standin-Scenario': 'cut' } },
  );
  await assert.rejects(async () => {
    for await (const chunk of stream) void chunk;
  });
});

test('rate_limited is an SDK RateLimitError carrying OpenAI error fields', async () => {
  const error = await client.chat.completions
    .create({ model: 'standin-rate_limited', messages: [{ role: 'user', content: 'hi' }] })
    .catch((e) => e);
  assert.ok(error instanceof OpenAI.RateLimitError, String(error));
  assert.equal(error.status, 429);
  assert.equal(error.code, 'rate_limit_exceeded');
  assert.equal(error.type, 'requests');
  assert.equal(error.headers.get('retry-after'), '1');
});

test('embeddings.create for a string and an array (the SDK asks for base64 and decodes it)', async () => {
  const one = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello world' });
  assert.equal(one.data.length, 1);
  assert.equal(one.data[0].embedding.length, 8);
  const norm = one.data[0].embedding.reduce((sum, v) => sum + v * v, 0);
  assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
  assert.deepEqual(one.usage, { prompt_tokens: 3, total_tokens: 3 });

  const many = await client.embeddings.create({
    model: 'text-embedding-3-small',
    input: ['hello world', 'other'],
    encoding_format: 'float',
  });
  assert.equal(many.data.length, 2);
  assert.deepEqual(many.data[0].embedding, Array.from(one.data[0].embedding));
  assert.deepEqual(many.usage, { prompt_tokens: 5, total_tokens: 5 });
});

test('a wrong key is an SDK AuthenticationError', async () => {
  const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: client.baseURL, maxRetries: 0 });
  const error = await wrong.embeddings.create({ model: 'm', input: 'x' }).catch((e) => e);
  assert.ok(error instanceof OpenAI.AuthenticationError, String(error));
  assert.equal(error.status, 401);
});
