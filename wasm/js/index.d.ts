// Types of @tokenmeter/wasm, written by hand: Emscripten 3.1.6 has no
// --emit-tsd (TOOLCHAIN.md). Keep in step with sdk.js and ../bindings.cpp.

/** Codes come from the core (`unknown_model`, `missing_field`, `tokens_not_allowed`, `encoding_not_loaded`, …; the server answers the same ones) or the loader (`not_initialized`, `wasm_unavailable`, `encoding_unavailable`). */
/** Every code a TokenmeterError of this package can carry (README: Errors); other strings stay assignable for codes a newer core adds. */
export type TokenmeterErrorCode =
  | 'not_initialized' | 'wasm_unavailable' | 'crypto_unavailable' | 'encoding_unavailable' | 'encoding_not_loaded'
  | 'unknown_encoding' | 'unknown_model' | 'unknown_operation' | 'missing_field' | 'tokens_not_allowed' | 'invalid_value'
  | 'invalid_count' | 'text_too_large' | 'invalid_utf8' | 'no_exact_tokenizer' | 'invalid_token' | 'unknown_token_id'
  | (string & {});
export declare class TokenmeterError extends Error {
  readonly code: TokenmeterErrorCode;
  /** On a failed loadTokenizer: when (ms since epoch) the next call fetches again; until then it returns this same rejection. */
  retryAt?: number;
  constructor(code: TokenmeterErrorCode, message?: string);
}

export type OperationId = 'chat' | 'embedding' | 'avatar' | (string & {});
/** The default catalog's models; a catalog of your own may name others, which still type-check. */
export type ModelId =
  | 'gpt-4o' | 'gpt-4o-mini' | 'claude-3-7-sonnet' | 'claude-3-5-sonnet' | 'text-embedding-3-small'
  | (string & {});

export interface CatalogModel {
  id: string;
  /** An exact rational as text: "1", "3", "5/2". */
  multiplier: string;
  tokenizer: 'o200k_base' | 'cl100k_base' | 'estimate';
  exact: boolean;
  operations: OperationId[];
  /**
   * Token class weights, exact rationals as text; absent when every class
   * weighs 1. charged = ceil((Σ class tokens × class weight) × multiplier);
   * an estimate weighs its input with `input` and maxOutputTokens with `output`.
   */
  weights?: { input: string; cached_input: string; output: string; reasoning: string };
}
export interface CatalogPlan {
  id: string; tokens_per_period: number; avatars_per_period: number;
  /** The payment provider's variants that sell this plan (the first is what a checkout buys); absent for a plan nobody buys (free). */
  variant_ids?: string[];
}
/** A credit pack: tokens bought once, kept from period to period, spent after the plan's allowance. */
export interface CatalogPack { id: string; variant_id: string; tokens: number }
export interface Catalog {
  version: string;
  operations: Array<{ id: OperationId; tokens_flat?: number; avatars?: number }>;
  models: CatalogModel[];
  plans: CatalogPlan[];
  /** Absent when the catalog sells no credit packs. */
  packs?: CatalogPack[];
}

export interface ChatMessage { role: string; content: string; name?: string }

export interface TokenCount { tokens: number; exact: boolean }

export interface Charge {
  rawTokens: number;
  chargedTokens: number;
  avatars: number;
  multiplier: string;
  /** false when the model's tokenizer is an estimate (Claude). */
  exact: boolean;
}

/**
 * What to size, as POST /v1/usage/authorize takes it (the core's estimate
 * rule, `tokenmeter/estimate.hpp`, decides for both): an avatar takes no
 * token counts at all (`tokens_not_allowed`); any other operation needs a
 * `model` and exactly one of `text`, `messages` (chat only) or `inputTokens`
 * (`missing_field`, `invalid_value`). Counts must be non-negative safe
 * integers (`invalid_count`).
 */
interface EstimateLimits { maxOutputTokens?: number }
/** An avatar: a flat price, no token counts. */
export interface AvatarEstimateInput {
  operation: 'avatar';
  model?: ModelId;
  text?: never; messages?: never; inputTokens?: never; maxOutputTokens?: never;
}
/** Exactly one input: text, chat messages, or a count you made yourself. */
export type TokenEstimateInput = EstimateLimits & { operation: OperationId; model: ModelId } & (
  | { text: string; messages?: never; inputTokens?: never }
  | { messages: ChatMessage[]; text?: never; inputTokens?: never }
  | { inputTokens: number; text?: never; messages?: never }
);
export type EstimateInput = AvatarEstimateInput | TokenEstimateInput;
/** The charge the server would reserve: input counted, maxOutputTokens as the output. */
export interface Estimate extends Charge { inputTokens: number }

export interface ReceiptClaims {
  iss: string; sub: string; iat: number; seq: number; prev: string; plan: string;
  period_start: string; period_end: string;
  tokens_limit: number; tokens_used: number; tokens_reserved: number;
  avatars_limit: number; avatars_used: number; avatars_reserved: number;
  /**
   * Purchased tokens (credit packs) on top of `tokens_limit`; negative is a
   * debt (a refund took back credits already spent). Claimed only by
   * receipts of accounts that ever held credits: absent means 0.
   */
  credits?: number;
  /** Credits taken back by refunds this period; present exactly when `credits` is. */
  credits_clawed?: number;
  event?: string;
  /** The price book version that priced the change (authorize, commit, record). */
  catalog_version?: string;
}
/** One quantity of a balance as the core derives it from the counts. */
export interface BalanceQuota { limit: number; used: number; reserved: number; /** max(0, capacity - used - reserved) for tokens, max(0, limit - used - reserved) for avatars. */ remaining: number }
/** A receipt's balance with what the core derives from it (Balance::tokens_capacity(), tokens_remaining()). */
export interface Balance {
  tokens: BalanceQuota & {
    /** The claim `credits` (0 when absent); may be negative (a debt). */ credits: number;
    /** What the period can spend: limit + credits. `used` above it (a refund took back spent credits) refuses every authorize until it is back. */ capacity: number;
  };
  avatars: BalanceQuota;
}
export type ReceiptVerification =
  | { valid: true; claims: ReceiptClaims; /** The claims' balance, with capacity and remaining from the core. */ balance: Balance; /** base64url SHA-256 of the payload: the next receipt's `prev`. */ chainDigest: string }
  | { valid: false; code: string; message: string };

export interface Jwk { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string; alg?: string; use?: string }
export interface Jwks { keys: Jwk[] }

/** The API's usage snapshot (DESIGN.md §7). */
export interface UsageSnapshot {
  user_id: string;
  plan: string;
  period: { start: string; end: string };
  /** `remaining` is max(0, limit + credits - used - reserved); `credits` is absent from servers before credit packs (read it as 0). */
  tokens: { limit: number; used: number; reserved: number; remaining: number; credits?: number };
  avatars: { limit: number; used: number; reserved: number; remaining: number };
  /** The usage alerts the server sends the app (percent of the token capacity); absent: the defaults, 80 and 100. */
  alerts?: { thresholds: number[] };
  seq?: number;
  receipt: string;
}
export interface Remaining { tokens: number; avatars: number; fits: boolean }

export interface InitOptions {
  /** A catalog to install instead of the built-in one (e.g. GET /v1/catalog). */
  catalog?: Catalog | string;
  /** Browser build only: where the .wasm lives, if not beside the module. */
  wasmUrl?: string | URL;
  /** Browser build only: the directory (URL, relative to the page) holding o200k_base.tmbpe and cl100k_base.tmbpe, if not the package's tokenizer/. */
  tokenizerUrl?: string | URL;
  /** Node build only: the directory holding the .tmbpe files, if not the package's tokenizer/. */
  tokenizerDir?: string;
}

/** Loads the wasm once; later calls return the same promise. */
export declare function init(options?: InitOptions): Promise<void>;
export declare function isReady(): boolean;
export declare function setCatalog(catalog: Catalog | string): void;
export declare function catalog(): Catalog;
/** Fetches (once, cached) the encoding asset the model counts with. A failure is cached too, until its `retryAt` (backoff doubling from 1 s to 60 s). */
export declare function loadTokenizer(model: ModelId): Promise<void>;
export declare function tokenizerReady(model: ModelId): boolean;
/** Synchronous; throws `encoding_not_loaded` until loadTokenizer(model) resolved. */
export declare function countTokens(text: string, model: ModelId): TokenCount;
/** countTokens(text, model).tokens as a plain number. */
export declare function tokenCount(text: string, model: ModelId): number;
/** Token ids as tiktoken's encode_ordinary gives them; `no_exact_tokenizer` for a model with only an estimate. */
export declare function encode(text: string, model: ModelId): Uint32Array;
/** The text of token ids (a cut inside a character becomes U+FFFD); `invalid_token` for an id that is not an integer in [0, 2^32), `unknown_token_id` for one not in the vocabulary. */
export declare function decode(ids: ArrayLike<number>, model: ModelId): string;
export type StatementVerification =
  | { valid: true; userId: string; plan: string; periodStart: string; periodEnd: string; firstSeq: number; lastSeq: number;
      receipts: number; charges: number; anchored: boolean; tokensUsed: number; avatarsUsed: number;
      /** Checked against the keys given, not only the statement's own. */ pinned: boolean }
  | { valid: false; code: 'malformed' | 'bad_signature' | 'wrong_user' | 'period_mismatch' | 'broken_chain' | 'charge_mismatch' | (string & {}); message: string };
/** A statement from GET /v1/me/statement checked offline (the same core verifier as `tokenmeter verify`); pass the JWKS of GET /v1/keys to pin the keys. */
export declare function verifyStatement(statement: string | object, jwks?: Jwks | string | null): StatementVerification;
export declare function countChatTokens(messages: ChatMessage[], model: ModelId): TokenCount;
/** The core's cost function (the server charges with the same code). */
export declare function price(operation: OperationId, model: ModelId, inputTokens: number, outputTokens: number): Charge;
/** Synchronous; throws a TokenmeterError for input the server would refuse, and `encoding_not_loaded` until loadTokenizer(model) resolved when counting text or messages. */
export declare function estimate(input: EstimateInput): Estimate;
export declare function verifyReceipt(receipt: string, jwks: Jwks | string): ReceiptVerification;
/**
 * What is left after `estimate`, and whether the server would authorize it.
 * A snapshot with its counts (limit, used, reserved; tokens' credits when
 * present) is decided by the core's ledger rule after init() (`not_initialized`
 * before; `invalid_count` for counts out of the ledger's range): a balance
 * whose used exceeds its capacity fits nothing. One with only `remaining` is
 * checked by subtraction and needs no init().
 */
export declare function remainingAfter(
  snapshot: { tokens: Partial<UsageSnapshot['tokens']> & { remaining: number }; avatars: Partial<UsageSnapshot['avatars']> & { remaining: number } },
  estimate: Pick<Charge, 'chargedTokens' | 'avatars'>,
): Remaining;

declare const tokenmeter: {
  init: typeof init; isReady: typeof isReady; setCatalog: typeof setCatalog; catalog: typeof catalog;
  loadTokenizer: typeof loadTokenizer; tokenizerReady: typeof tokenizerReady;
  countTokens: typeof countTokens; tokenCount: typeof tokenCount; encode: typeof encode; decode: typeof decode; countChatTokens: typeof countChatTokens; price: typeof price;
  estimate: typeof estimate; verifyReceipt: typeof verifyReceipt; verifyStatement: typeof verifyStatement; remainingAfter: typeof remainingAfter;
};
export default tokenmeter;
