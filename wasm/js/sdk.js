// @tokenmeter/wasm: the JavaScript face of the core (DESIGN.md §10).
//
// One implementation for every environment: index.js (browsers) and node.js
// (Node) only say how to instantiate the Embind module and how to read an
// encoding asset. Embind functions return {ok, code, message} values; here
// they become results (verifyReceipt) or TokenmeterError exceptions with the
// core's code, so callers can branch on `error.code`.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class TokenmeterError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = 'TokenmeterError';
    this.code = code;
  }
}

function unwrap(result) {
  if (!result.ok) throw new TokenmeterError(result.code, result.message);
  return result;
}

// A failed encoding load is remembered: callers asking again before its
// retry time get the same rejected promise (no request), so a page that asks
// on every render cannot turn a 404 into hundreds of requests a second. The
// delay doubles per failure up to the cap.
export const encodingRetry = { initialMs: 1000, maxMs: 60000 };

// Reads an encoding asset over fetch (the browser entry's readEncoding). A
// 200 carrying an HTML page (an SPA fallback where the asset should be) is a
// failure here, not bytes for the core to reject.
export async function fetchEncodingBytes(url, fetchImpl = globalThis.fetch) {
  const response = await fetchImpl(url);
  if (!response.ok) throw new TokenmeterError('encoding_unavailable', `${url}: HTTP ${response.status}`);
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('text/html')) throw new TokenmeterError('encoding_unavailable', `${url}: an HTML page, not the encoding`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * @param {object} environment
 * @param {() => Promise<object>} environment.instantiate  the Embind module
 * @param {(encoding: string) => Promise<Uint8Array>} environment.readEncoding  one asset's bytes
 * @param {() => number} [environment.now]  the clock for retry times (Date.now)
 * @param {{initialMs: number, maxMs: number}} [environment.retry]  backoff after a failed load
 */
export function createTokenmeter({ instantiate, readEncoding, now = Date.now, retry = encodingRetry }) {
  let core = null;
  let initializing = null;
  let catalog = null;
  const models = new Map();
  // Encoding name -> {promise, failures, retryAt}: each asset is fetched once
  // even when several callers ask at the same time, and a failure is kept
  // (retryAt set) until its retry time.
  const encodingLoads = new Map();

  function requireCore() {
    if (!core) throw new TokenmeterError('not_initialized', 'call init() first');
    return core;
  }

  function installCatalog(json) {
    catalog = JSON.parse(json);
    models.clear();
    for (const model of catalog.models) models.set(model.id, model);
  }

  // Idempotent: every call returns the same promise; a failed attempt can be
  // retried (a network error must not poison the page for good).
  function init(options = {}) {
    initializing ??= (async () => {
      // Emscripten reports a wasm it cannot fetch or compile as a bare
      // "Aborted(…)": the SDK's callers get a TokenmeterError instead.
      const module = await Promise.resolve()
        .then(() => instantiate(options))
        .catch((cause) => {
          if (cause instanceof TokenmeterError) throw cause;
          throw new TokenmeterError('wasm_unavailable', `the tokenmeter wasm could not be loaded: ${cause?.message ?? cause}`);
        });
      if (!module.ready()) throw new TokenmeterError('crypto_unavailable', 'libsodium did not initialize in wasm');
      core = module;
      if (options.catalog) setCatalog(options.catalog);
      else installCatalog(core.catalogJson());
    })().catch((error) => {
      initializing = null;
      throw error;
    });
    return initializing;
  }

  function setCatalog(catalogValue) {
    const text = typeof catalogValue === 'string' ? catalogValue : JSON.stringify(catalogValue);
    unwrap(requireCore().setCatalog(text));
    installCatalog(requireCore().catalogJson());
  }

  function modelNamed(id) {
    requireCore();
    const model = models.get(id);
    if (!model) throw new TokenmeterError('unknown_model', `unknown model "${id}"`);
    return model;
  }

  function encodingFor(modelId) {
    return requireCore().encodingForTokenizer(modelNamed(modelId).tokenizer);
  }

  function tokenizerReady(modelId) {
    return requireCore().encodingLoaded(encodingFor(modelId));
  }

  // Fetches (once) and loads the encoding a model counts with. After a
  // failure the same rejected promise is returned until its `retryAt`; the
  // rejection's TokenmeterError carries `retryAt` so callers can schedule
  // the next attempt instead of polling.
  function loadTokenizer(modelId) {
    const encoding = encodingFor(modelId);
    if (core.encodingLoaded(encoding)) return Promise.resolve();
    const previous = encodingLoads.get(encoding);
    if (previous && (previous.retryAt === null || now() < previous.retryAt)) return previous.promise;
    const failures = previous ? previous.failures : 0;
    const entry = { promise: null, failures, retryAt: null };
    entry.promise = (async () => {
      const bytes = await readEncoding(encoding);
      unwrap(core.loadEncoding(bytes));
    })().catch((cause) => {
      const error = cause instanceof TokenmeterError ? cause : new TokenmeterError('encoding_unavailable', `${encoding}: ${cause?.message ?? cause}`);
      entry.failures = failures + 1;
      entry.retryAt = now() + Math.min(retry.maxMs, retry.initialMs * 2 ** failures);
      error.retryAt = entry.retryAt;
      throw error;
    });
    // Kept for later callers: not an unhandled rejection if nobody awaits it now.
    entry.promise.catch(() => undefined);
    encodingLoads.set(encoding, entry);
    return entry.promise;
  }

  function countTokens(text, modelId) {
    const model = modelNamed(modelId);
    const counted = unwrap(core.countTextTokens(model.tokenizer, encoder.encode(text)));
    return { tokens: counted.tokens, exact: counted.exact };
  }

  // The model's exact tokenizer, or a TokenmeterError for a model that has
  // only an estimate (Claude): ids of an estimate would mean nothing.
  function exactEncodingOf(modelId) {
    const model = modelNamed(modelId);
    if (model.tokenizer === 'estimate') {
      throw new TokenmeterError('no_exact_tokenizer', `${modelId} has no exact tokenizer: its counts are estimates`);
    }
    return model.tokenizer;
  }

  // Token ids of `text` as the model's tokenizer gives them (tiktoken's
  // encode_ordinary): for truncating text to a budget.
  function encode(text, modelId) {
    return unwrap(core.encodeOrdinary(exactEncodingOf(modelId), encoder.encode(text))).ids;
  }

  // The text of token ids; a cut inside a character becomes U+FFFD.
  function decode(ids, modelId) {
    const encoding = exactEncodingOf(modelId);
    const list = Array.from(ids);
    for (const id of list) {
      if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) {
        throw new TokenmeterError('invalid_token', `a token id is an integer from 0 to 2^32 - 1, not ${String(id).slice(0, 32)}`);
      }
    }
    return decoder.decode(unwrap(core.decodeTokens(encoding, list)).bytes);
  }

  // countTokens(text, model).tokens, as a plain number.
  function tokenCount(text, modelId) {
    return countTokens(text, modelId).tokens;
  }

  function countChatTokens(messages, modelId) {
    const model = modelNamed(modelId);
    const counted = unwrap(core.countChatTokens(model.tokenizer, encoder.encode(JSON.stringify(messages))));
    return { tokens: counted.tokens, exact: counted.exact };
  }

  function price(operation, modelId, inputTokens, outputTokens) {
    const charge = unwrap(requireCore().price(operation, modelId ?? '', inputTokens, outputTokens));
    return {
      rawTokens: charge.rawTokens,
      chargedTokens: charge.chargedTokens,
      avatars: charge.avatars,
      multiplier: charge.multiplier,
      exact: charge.exact,
    };
  }

  // What the server would reserve for the same request: the core's estimate
  // rule (the one POST /v1/usage/authorize applies: exactly one of text,
  // messages or inputTokens; an avatar takes none), then the core's cost
  // function with maxOutputTokens as the output. Text crosses as UTF-8 bytes,
  // messages as the bytes of their JSON.
  function estimate({ operation, model, text, messages, inputTokens, maxOutputTokens }) {
    const estimated = unwrap(requireCore().estimate({
      operation,
      model,
      text: text === undefined ? undefined : encoder.encode(text),
      messages: messages === undefined ? undefined : encoder.encode(JSON.stringify(messages)),
      inputTokens,
      maxOutputTokens,
    }));
    return {
      rawTokens: estimated.rawTokens,
      chargedTokens: estimated.chargedTokens,
      avatars: estimated.avatars,
      multiplier: estimated.multiplier,
      exact: estimated.exact,
      inputTokens: estimated.inputTokens,
    };
  }

  // Checks a receipt's signature against a JWKS (object or JSON text). Never
  // throws for a bad receipt: `valid: false` with the reason in `code`.
  function verifyReceipt(receipt, jwks) {
    const text = typeof jwks === 'string' ? jwks : JSON.stringify(jwks);
    const result = requireCore().verifyReceipt(String(receipt ?? ''), text);
    if (!result.valid) return { valid: false, code: result.code, message: result.message };
    return { valid: true, claims: result.claims, balance: result.balance, chainDigest: result.chainDigest };
  }

  // A statement (GET /v1/me/statement, as text or parsed) checked offline by
  // the core's verifier: signatures, the prev chain, the charges adding up.
  // With `jwks` (GET /v1/keys, fetched or pinned) the keys are checked too;
  // without, the statement's own keys prove it intact, not whose it is.
  function verifyStatement(statement, jwks) {
    const text = typeof statement === 'string' ? statement : JSON.stringify(statement);
    const keys = jwks === undefined || jwks === null ? '' : typeof jwks === 'string' ? jwks : JSON.stringify(jwks);
    const result = requireCore().verifyStatement(text, keys);
    if (!result.valid) return { valid: false, code: result.code, message: result.message };
    const { ok, valid, ...summary } = result;
    return { valid: true, ...summary };
  }

  // The balance left if `estimate` were charged against `snapshot` (the API's
  // snapshot shape); `fits` says whether the server would authorize it. With
  // the counts (limit, used, reserved, and credits when the account has any)
  // the core decides, by the ledger's own rule: a balance past its capacity
  // (credits taken back after they were spent) fits nothing, not even a
  // charge of zero. A snapshot holding only `remaining` is checked by
  // subtraction, as before credits existed.
  function remainingAfter(snapshot, charge) {
    const avatarsCharged = charge.avatars ?? 0;
    if (hasCounts(snapshot.tokens) && hasCounts(snapshot.avatars)) {
      const after = unwrap(requireCore().remainingAfter(snapshot, charge.chargedTokens, avatarsCharged));
      return { tokens: after.tokens, avatars: after.avatars, fits: after.fits };
    }
    const tokens = snapshot.tokens.remaining - charge.chargedTokens;
    const avatars = snapshot.avatars.remaining - avatarsCharged;
    return { tokens, avatars, fits: tokens >= 0 && avatars >= 0 };
  }

  // Whether a quota brings its counts (then the core checks them, and
  // refuses bad ones) rather than only `remaining`.
  function hasCounts(quota) {
    return quota != null && ['limit', 'used', 'reserved'].some((name) => quota[name] !== undefined);
  }

  return {
    init,
    isReady: () => core !== null,
    setCatalog,
    catalog: () => (requireCore(), catalog),
    loadTokenizer,
    tokenizerReady,
    verifyStatement,
    countTokens,
    tokenCount,
    encode,
    decode,
    countChatTokens,
    price,
    estimate,
    verifyReceipt,
    remainingAfter,
  };
}
