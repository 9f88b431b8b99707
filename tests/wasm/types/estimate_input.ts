// Compile-time checks of @tokenmeter/wasm's types (tests/wasm/types.test.mjs
// runs tsc on this file): each @ts-expect-error line must fail to compile,
// and tsc reports an unused one, so a type that stops rejecting fails here.
import {
  countTokens, estimate, remainingAfter, verifyReceipt, type EstimateInput, type ModelId, type UsageSnapshot, TokenmeterError,
} from '@tokenmeter/wasm';

const fine: EstimateInput[] = [
  { operation: 'chat', model: 'gpt-4o', text: 'hello' },
  { operation: 'chat', model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], maxOutputTokens: 100 },
  { operation: 'embedding', model: 'text-embedding-3-small', inputTokens: 1200 },
  { operation: 'avatar' },
  // A catalog of one's own may name other models and operations.
  { operation: 'summary', model: 'my-model', text: 'x' },
];

// @ts-expect-error both text and inputTokens
const both: EstimateInput = { operation: 'chat', model: 'gpt-4o', text: 'hello', inputTokens: 3 };
// @ts-expect-error neither text, messages nor inputTokens
const neither: EstimateInput = { operation: 'chat', model: 'gpt-4o' };
// @ts-expect-error a token operation needs a model
const noModel: EstimateInput = { operation: 'chat', text: 'hello' };
// @ts-expect-error an avatar takes no token counts
const avatarWithTokens: EstimateInput = { operation: 'avatar', inputTokens: 5 };
// @ts-expect-error a model id is a string
const numberModel: ModelId = 4;

const known: ModelId = 'claude-3-7-sonnet';
const count: number = countTokens('hello', known).tokens;
const charged: number = estimate({ operation: 'chat', model: known, text: 'hello' }).chargedTokens;
const code: string = new TokenmeterError('not_initialized').code;

export { fine, both, neither, noModel, avatarWithTokens, numberModel, count, charged, code };

// Credits: typed on receipts, snapshots and the core's balance.
const verification = verifyReceipt('', { keys: [] });
if (verification.valid) {
  const credits: number | undefined = verification.claims.credits;
  const capacity: number = verification.balance.tokens.capacity;
  const owed: number = verification.balance.tokens.credits;
  // @ts-expect-error avatars have no credits
  const avatarCredits = verification.balance.avatars.credits;
  remainingAfter(verification.balance, { chargedTokens: 1, avatars: 0 });
}
declare const snapshot: UsageSnapshot;
const snapshotCredits: number | undefined = snapshot.tokens.credits;
const alertPercents: number[] | undefined = snapshot.alerts?.thresholds;
remainingAfter({ tokens: { remaining: 3 }, avatars: { remaining: 1 } }, { chargedTokens: 1, avatars: 0 });
