// The framework-free core of useTokenLimits (the TanStack query-core /
// react-query split): one client per app origin and user, holding the newest
// verified usage snapshot, kept live over the SSE stream by one leader tab
// and shared with the other tabs over a BroadcastChannel.
//
// Trust: numbers come only from receipts this tab verified in wasm against
// the server's JWKS. The highest `seq` wins; a receipt that follows the
// current one (seq + 1) must name its payload digest in `prev`, otherwise the
// chain is flagged broken (a change was hidden or replayed); one that skips
// seqs (seq + 2 or more) is a gap: signed, but the changes in between were
// never seen here, so the chain is no longer verified end to end.
//
// Nothing here runs at import: a client does work only once start() is
// called (the React provider calls it in an effect, never during a render).
import * as tm from '@tokenmeter/wasm';
import type { Balance, Catalog, Estimate, EstimateInput, Jwks, ReceiptClaims, UsageSnapshot } from '@tokenmeter/wasm';
import { readEventStream } from './sse.js';

export type Status = 'loading' | 'ready' | 'error';
// How the current receipt relates to the one before it.
export type Chain = 'start' | 'linked' | 'gap' | 'broken';

/**
 * One quantity of the balance, as the core derives it from the receipt
 * (Balance::tokens_capacity(), tokens_remaining()).
 */
export interface Quota {
  /** The plan's allowance this period. */
  limit: number;
  used: number;
  reserved: number;
  /**
   * Purchased tokens (credit packs) on top of the allowance, kept from period
   * to period; negative is a debt (a refund took back credits already spent).
   * Always 0 for avatars: packs sell tokens.
   */
  credits: number;
  /** What the period can spend: limit + credits. */
  capacity: number;
  /** max(0, capacity - used - reserved): what can still be reserved. */
  remaining: number;
}

/** A usage alert of the server (percent of the token capacity) and whether this balance reached it. */
export interface Threshold {
  percent: number;
  /** used × 100 ≥ percent × capacity (exact integer math, capacity = limit + credits). */
  reached: boolean;
}

/** The alert percents a server that does not say (no `alerts` in its snapshot) uses: DESIGN.md §13. */
export const defaultThresholdPercents: readonly number[] = [80, 100];

/**
 * The client's state, flat. `status` decides which fields are set:
 * 'ready' means a verified receipt is shown, so userId, plan, period, tokens,
 * avatars, asOf and receipt are non-null (see TokenLimitsState for the
 * narrowed union); 'loading' and 'error' have none of them.
 */
export interface TokenLimitsFields {
  status: Status;
  userId: string | null;
  plan: string | null;
  period: { start: string; end: string } | null;
  tokens: Quota | null;
  avatars: Quota | null;
  /** tokens.credits, for convenience: purchased tokens left (negative: a debt); null until ready. */
  credits: number | null;
  /**
   * The server's usage alerts (its snapshot's `alerts.thresholds`, 80 % and
   * 100 % when it names none), lowest first, each with whether the balance
   * reached it. Empty until ready, or when the server configures none.
   */
  thresholds: Threshold[];
  seq: number;
  /** The numbers shown come from a receipt verified in this tab, and no newer receipt failed verification. */
  verified: boolean;
  chain: Chain;
  /** Sticky: once a receipt failed to chain, until the page reloads. */
  chainBroken: boolean;
  /**
   * Every receipt since this tab's first one followed the one before it
   * (seq + 1, `prev` naming its digest). False after a gap or a break, until
   * the page reloads: changes in between were never verified here, so the
   * numbers are signed but not a verified continuation. Show "verified" only
   * when both `verified` and `chainVerified` hold.
   */
  chainVerified: boolean;
  /** The stream is open (this tab's or the leader tab's). */
  live: boolean;
  /** The server is unreachable: numbers are the last verified receipt, estimates are local. */
  offline: boolean;
  /** Not live: a change may have happened that this state does not show. */
  stale: boolean;
  /** When the server signed the current receipt (ms since epoch). */
  asOf: number | null;
  /** When this tab last verified a change (ms since epoch, local clock). */
  verifiedAt: number | null;
  error: { code: string; message: string } | null;
  leader: boolean;
  catalog: Catalog | null;
  /** The receipt of the current state (for display and export). */
  receipt: string | null;
}

type Loading = { status: 'loading'; userId: null; plan: null; period: null; tokens: null; avatars: null; credits: null; asOf: null; receipt: null };
type Failed = { status: 'error'; error: { code: string; message: string }; userId: null; plan: null; period: null; tokens: null; avatars: null; credits: null; asOf: null; receipt: null };
type Ready = { status: 'ready'; userId: string; plan: string; period: { start: string; end: string }; tokens: Quota; avatars: Quota; credits: number; asOf: number; receipt: string };

/** The state as a discriminated union on `status`: `ready` narrows the balance to non-null. */
export type TokenLimitsState =
  | (Omit<TokenLimitsFields, keyof Loading> & Loading)
  | (Omit<TokenLimitsFields, keyof Failed> & Failed)
  | (Omit<TokenLimitsFields, keyof Ready> & Ready);

export interface EstimateWithBalance extends Estimate {
  remainingTokens: number;
  remainingAvatars: number;
  fits: boolean;
}

export interface LockManagerLike {
  request(name: string, callback: () => Promise<unknown>): Promise<unknown>;
}
export interface NavigateOptions {
  /** Overrides the client's navigate for this call (e.g. into a tab opened on click). */
  navigate?: (url: string) => void;
}
export interface CheckoutOptions extends NavigateOptions {
  /** Where the payment page sends the user afterwards. */
  redirectUrl?: string;
}
/**
 * What startCheckout buys, and how: a plan of the catalog (`plan`, the pro
 * plan when neither is given) or a credit pack (`pack`, a catalog pack id),
 * never both.
 */
export type CheckoutRequest = CheckoutOptions & (
  | { plan?: string; pack?: never }
  | { pack: string; plan?: never }
);

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface TokenLimitsOptions {
  baseUrl: string;
  getAccessToken: () => Promise<string | null> | string | null;
  jwks?: Jwks;
  /** Defaults: globalThis.fetch, localStorage, navigator.locks, BroadcastChannel, Date.now. */
  fetch?: typeof fetch;
  storage?: StorageLike | null;
  locks?: LockManagerLike | null;
  channel?: { new (name: string): BroadcastChannel } | null;
  now?: () => number;
  navigate?: (url: string) => void;
  reconnect?: { initialMs: number; maxMs: number };
  /**
   * Runs `run` after `delayMs` and returns a cancel function, and gives the
   * reconnect jitter's number in [0, 1). Defaults: setTimeout, Math.random.
   * Tests pass their own to step through reconnects without waiting.
   */
  setTimer?: (run: () => void, delayMs: number) => () => void;
  random?: () => number;
  /** Default output budget a chat estimate reserves when the input names none. */
  defaultMaxOutputTokens?: number;
}

interface Persisted {
  receipt: string;
  jwks: Jwks;
  catalog: Catalog | null;
  verifiedAt: number;
  thresholdPercents?: number[];
}

type ChannelMessage =
  | { type: 'hello' }
  | { type: 'receipt'; receipt: string; thresholdPercents?: number[] }
  | { type: 'link'; live: boolean; offline: boolean };

export const initialState: TokenLimitsState = {
  status: 'loading', userId: null, plan: null, period: null, tokens: null, avatars: null, credits: null, thresholds: [], seq: 0,
  verified: false, chain: 'start', chainBroken: false, chainVerified: true, live: false, offline: false, stale: true,
  asOf: null, verifiedAt: null, error: null, leader: false, catalog: null, receipt: null,
};

// A quota from the balance the core derived from a verified receipt; the
// avatars have no credits, so their capacity is their limit.
function tokenQuota(balance: Balance['tokens']): Quota {
  const { limit, used, reserved, credits, capacity, remaining } = balance;
  return { limit, used, reserved, credits, capacity, remaining };
}
function avatarQuota(balance: Balance['avatars']): Quota {
  const { limit, used, reserved, remaining } = balance;
  return { limit, used, reserved, credits: 0, capacity: limit, remaining };
}
const emptyQuota: Quota = { limit: 0, used: 0, reserved: 0, credits: 0, capacity: 0, remaining: 0 };

// The server's alert percents as it states them, or null for anything that is
// not a list of at most 16 ascending integers in [1, 1000] (the rules the
// server's configuration checks): a malformed field keeps what was known.
export function thresholdPercentsOf(alerts: unknown): number[] | null {
  const list = (alerts as { thresholds?: unknown } | null | undefined)?.thresholds;
  if (!Array.isArray(list) || list.length > 16) return null;
  let previous = 0;
  for (const percent of list) {
    if (!Number.isInteger(percent) || percent <= previous || percent > 1000) return null;
    previous = percent;
  }
  return list as number[];
}

/**
 * Whether each alert is reached: used × 100 ≥ percent × capacity, in BigInt
 * (counts go up to 2^53, so the products do not fit a double exactly). A
 * capacity at or below zero (a debt as large as the allowance) has every
 * threshold reached: nothing more can be spent.
 */
export function thresholdsOf(tokens: Pick<Quota, 'used' | 'capacity'> | null, percents: readonly number[]): Threshold[] {
  if (!tokens) return [];
  const used = BigInt(tokens.used) * 100n;
  const capacity = BigInt(tokens.capacity);
  return percents.map((percent) => ({ percent, reached: used >= BigInt(percent) * capacity }));
}

const samePercents = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((p, i) => p === b[i]);

// The union's invariant, checked on every change (a programmer error if not).
function checked(state: TokenLimitsFields): TokenLimitsState {
  const shown = [state.userId, state.plan, state.period, state.tokens, state.avatars, state.credits, state.asOf, state.receipt];
  if (state.status === 'ready' ? shown.some((v) => v === null) : shown.some((v) => v !== null)) {
    throw new Error(`tokenmeter: a '${state.status}' state with ${state.status === 'ready' ? 'missing' : 'stray'} balance fields`);
  }
  if (state.status === 'error' && state.error === null) throw new Error("tokenmeter: an 'error' state without an error");
  return state as TokenLimitsState;
}

export class TokenLimitsClient {
  private state: TokenLimitsState = initialState;
  private options: TokenLimitsOptions;
  private readonly listeners = new Set<() => void>();
  private readonly fetch: typeof fetch;
  private readonly storage: StorageLike | null;
  private readonly storageKey: string;
  private readonly now: () => number;
  private channel: BroadcastChannel | null = null;
  private jwks: Jwks | null;
  private chainDigest: string | null = null;
  private stream: AbortController | null = null;
  private cancelReconnect: (() => void) | null = null;
  private failures = 0;
  private releaseLeadership: (() => void) | null = null;
  private stopped = false;
  private started: Promise<void> | null = null;
  private cancelBootRetry: (() => void) | null = null;
  private bootFailures = 0;
  // Model -> the tokenizer load this client is waiting on: the wasm package
  // returns the same promise (a remembered failure included) until it is
  // worth asking again, so a render that asks again adds no listener.
  private readonly tokenizerLoads = new Map<string, Promise<void>>();
  // The server's alert percents: its snapshots' `alerts.thresholds`, which
  // are configuration, not balance, so they are not in the signed receipt.
  private thresholdPercents: readonly number[] = defaultThresholdPercents;

  constructor(options: TokenLimitsOptions) {
    this.options = options;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.storage = options.storage !== undefined ? options.storage : (globalThis.localStorage ?? null);
    this.storageKey = `tokenmeter:${options.baseUrl}`;
    this.now = options.now ?? Date.now;
    this.jwks = options.jwks ?? null;
  }

  // --- the store contract (useSyncExternalStore) ---------------------------

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getState = (): TokenLimitsState => this.state;

  setAccessTokenGetter(getAccessToken: TokenLimitsOptions['getAccessToken']) {
    this.options = { ...this.options, getAccessToken };
  }

  private update(patch: Partial<TokenLimitsFields>) {
    const next: TokenLimitsFields = { ...this.state, ...patch };
    next.stale = !next.live;
    next.thresholds = thresholdsOf(next.tokens, this.thresholdPercents);
    this.state = checked(next);
    for (const listener of this.listeners) listener();
  }

  // --- start and stop --------------------------------------------------------

  start(): Promise<void> {
    this.started ??= this.boot();
    return this.started;
  }

  private async boot() {
    try {
      await tm.init();
    } catch (error) {
      this.update({ status: 'error', error: describe(error) });
      return;
    }
    // The chat models count with o200k_base; fetch it now so estimates are
    // synchronous by the time the user types (cl100k_base loads on demand).
    // Not fatal: balances need no tokenizer, and estimate() asks again once
    // the wasm package's backoff allows.
    await tm.loadTokenizer('gpt-4o-mini').catch(() => undefined);
    if (this.stopped) return;
    this.restorePersisted();
    await this.connectWhenKeyed();
  }

  // Keys and catalog, then the tabs and the stream. Without keys (the first
  // visit and the server unreachable, or answering with an error or an HTML
  // page) nothing can be verified: retried with the reconnect backoff.
  private async connectWhenKeyed() {
    const keyed = await this.loadKeysAndCatalog();
    if (this.stopped) return;
    if (keyed || this.jwks) {
      this.bootFailures = 0;
      this.joinTabs();
      return;
    }
    this.bootFailures += 1;
    this.cancelBootRetry = this.schedule(() => void this.connectWhenKeyed(), this.bootFailures);
  }

  stop() {
    this.stopped = true;
    this.stream?.abort();
    this.cancelReconnect?.();
    this.cancelBootRetry?.();
    this.releaseLeadership?.();
    this.channel?.close();
  }

  // --- keys, catalog, persisted state ---------------------------------------

  private restorePersisted() {
    const text = this.storage?.getItem(this.storageKey);
    if (!text) return;
    try {
      const persisted = JSON.parse(text) as Persisted;
      this.jwks ??= persisted.jwks;
      this.thresholdPercents = thresholdPercentsOf({ thresholds: persisted.thresholdPercents }) ?? this.thresholdPercents;
      if (persisted.catalog) this.installCatalog(persisted.catalog);
      // Re-verified, not trusted: storage is writable by any script here.
      this.accept(persisted.receipt, { persist: false, verifiedAt: persisted.verifiedAt });
    } catch {
      // A corrupt entry is ignored; the server will send a fresh receipt.
    }
  }

  private persist(receipt: string) {
    if (!this.storage || !this.jwks) return;
    const persisted: Persisted = {
      receipt, jwks: this.jwks, catalog: this.state.catalog, verifiedAt: this.now(), thresholdPercents: [...this.thresholdPercents],
    };
    try {
      this.storage.setItem(this.storageKey, JSON.stringify(persisted));
    } catch {
      // Storage full or disabled: offline mode just starts emptier.
    }
  }

  // Whether the server's keys (and catalog) arrived.
  private async loadKeysAndCatalog(): Promise<boolean> {
    try {
      const [keys, catalog] = await Promise.all([
        this.options.jwks ? Promise.resolve(this.options.jwks) : this.getJson<Jwks>('/v1/keys', false),
        this.getJson<Catalog>('/v1/catalog', false),
      ]);
      this.jwks = keys;
      this.installCatalog(catalog);
      this.dropUnlessServerSigned();
      if (this.state.status === 'error') this.update({ status: 'loading', error: null });
      return true;
    } catch (error) {
      // Offline start: keys and catalog from the last session, if any.
      if (!this.jwks) this.update({ status: 'error', error: describe(error) });
      this.update({ offline: true });
      return false;
    }
  }

  // The persisted receipt was checked against the persisted JWKS, which sits
  // in the same storage; once the server's own keys are here, a receipt they
  // do not verify is dropped rather than shown.
  private dropUnlessServerSigned() {
    if (!this.state.receipt || !this.jwks) return;
    if (tm.verifyReceipt(this.state.receipt, this.jwks).valid) return;
    this.chainDigest = null;
    this.update({ ...initialState, catalog: this.state.catalog, error: { code: 'receipt_invalid', message: 'the stored receipt is not signed by this server' } });
  }

  private installCatalog(catalog: Catalog) {
    try {
      tm.setCatalog(catalog);
      this.update({ catalog: tm.catalog() });
    } catch (error) {
      this.update({ error: describe(error) });
    }
  }

  // --- receipts ---------------------------------------------------------------

  // Verifies a receipt and, if it is newer than the current one, makes it the
  // state. Returns whether it was applied.
  accept(receipt: string, how: { persist?: boolean; verifiedAt?: number; broadcast?: boolean } = {}): boolean {
    if (!this.jwks) return false;
    const verification = tm.verifyReceipt(receipt, this.jwks);
    if (!verification.valid) {
      this.update({ verified: false, error: { code: 'receipt_invalid', message: `${verification.code}: ${verification.message}` } });
      return false;
    }
    const claims = verification.claims;
    const sameUser = this.state.userId === null || this.state.userId === claims.sub;
    if (sameUser && claims.seq <= this.state.seq) {
      // Older or the same: highest seq wins. A replay of the current one is harmless.
      if (claims.seq === this.state.seq) this.update({ verified: true });
      return false;
    }
    const chain = this.chainOf(claims, sameUser);
    this.chainDigest = verification.chainDigest;
    this.update({
      ...stateOfClaims(claims, verification.balance),
      status: 'ready',
      receipt,
      verified: true,
      chain,
      chainBroken: this.state.chainBroken || chain === 'broken',
      // A new start (first receipt, another user) begins a new chain; a gap
      // or a break spoils it for good.
      chainVerified: chain === 'linked' ? this.state.chainVerified : chain === 'start',
      verifiedAt: how.verifiedAt ?? this.now(),
      error: this.state.error?.code === 'receipt_invalid' ? null : this.state.error,
    });
    if (how.persist !== false) this.persist(receipt);
    if (how.broadcast !== false && this.state.leader) this.post({ type: 'receipt', receipt, thresholdPercents: [...this.thresholdPercents] });
    return true;
  }

  // A snapshot from the server (GET /v1/me/usage or the stream): its alert
  // percents, then its receipt. The percents are configuration, so a
  // snapshot whose receipt is not newer may still change them.
  private acceptSnapshot(snapshot: UsageSnapshot) {
    this.noteThresholds(snapshot.alerts === undefined ? defaultThresholdPercents : thresholdPercentsOf(snapshot.alerts));
    this.accept(snapshot.receipt);
  }

  private noteThresholds(percents: readonly number[] | null | undefined) {
    if (!percents || samePercents(percents, this.thresholdPercents)) return;
    this.thresholdPercents = percents;
    if (this.state.status === 'ready') {
      this.update({});
      if (this.state.receipt) this.persist(this.state.receipt);
    }
  }

  private chainOf(claims: ReceiptClaims, sameUser: boolean): Chain {
    if (!sameUser || this.chainDigest === null) return 'start';
    if (claims.seq !== this.state.seq + 1) return 'gap'; // changes in between were coalesced or missed
    return claims.prev === this.chainDigest ? 'linked' : 'broken';
  }

  // --- tabs -------------------------------------------------------------------

  private joinTabs() {
    const Channel = this.options.channel !== undefined ? this.options.channel : (globalThis.BroadcastChannel ?? null);
    if (Channel) {
      this.channel = new Channel(this.storageKey);
      this.channel.onmessage = (message: MessageEvent<ChannelMessage>) => this.onTabMessage(message.data);
    }
    const locks = this.options.locks !== undefined ? this.options.locks : (globalThis.navigator as Navigator & { locks?: LockManagerLike })?.locks;
    if (!locks || !this.channel) {
      this.becomeLeader();
      return;
    }
    // Followers still fetch once, so a new tab shows numbers at once, and ask
    // the leader for its link state.
    void this.refresh().catch(() => undefined);
    this.post({ type: 'hello' });
    void locks.request(`${this.storageKey}:leader`, () => {
      if (this.stopped) return Promise.resolve();
      this.becomeLeader();
      return new Promise<void>((resolve) => (this.releaseLeadership = resolve));
    });
  }

  private becomeLeader() {
    this.update({ leader: true });
    this.connect();
  }

  private onTabMessage(message: ChannelMessage) {
    if (message.type === 'hello' && this.state.leader) {
      if (this.state.receipt) this.post({ type: 'receipt', receipt: this.state.receipt, thresholdPercents: [...this.thresholdPercents] });
      this.post({ type: 'link', live: this.state.live, offline: this.state.offline });
    } else if (message.type === 'receipt') {
      this.noteThresholds(thresholdPercentsOf({ thresholds: message.thresholdPercents }));
      this.accept(message.receipt, { broadcast: false });
    } else if (message.type === 'link' && !this.state.leader) {
      this.update({ live: message.live, offline: message.offline });
    }
  }

  private post(message: ChannelMessage) {
    try {
      this.channel?.postMessage(message);
    } catch {
      // A closed channel (the tab is going away).
    }
  }

  private setLink(live: boolean, offline: boolean) {
    if (this.state.live === live && this.state.offline === offline) return;
    this.update({ live, offline });
    if (this.state.leader) this.post({ type: 'link', live, offline });
  }

  // --- the stream (leader only) ---------------------------------------------

  private async connect() {
    if (this.stopped) return;
    this.stream = new AbortController();
    let reachable = false;
    try {
      const response = await this.fetch(`${this.options.baseUrl}/v1/me/usage/stream`, {
        headers: { ...(await this.authorization()), Accept: 'text/event-stream' },
        signal: this.stream.signal,
        cache: 'no-store',
      });
      reachable = true;
      if (!response.ok || !response.body) throw await apiError(response);
      await readEventStream(response.body, (event) => {
        if (event.event !== 'usage') return;
        const snapshot = JSON.parse(event.data) as UsageSnapshot;
        this.failures = 0;
        this.setLink(true, false);
        this.acceptSnapshot(snapshot);
      });
    } catch (error) {
      if (this.stopped) return;
      if (error instanceof TokenLimitsError) this.update({ error: describe(error) });
    }
    if (this.stopped) return;
    // The stream ended (a restart, a deploy) or never opened. Only an
    // unreachable server means offline; an HTTP refusal is an error instead.
    this.failures += 1;
    this.setLink(false, !reachable);
    this.scheduleReconnect();
  }

  private scheduleReconnect() {
    this.cancelReconnect = this.schedule(() => void this.connect(), this.failures);
  }

  // Runs `run` after the backoff for the n-th failure in a row: doubling
  // from reconnect.initialMs, capped at reconnect.maxMs, jittered.
  private schedule(run: () => void, failures: number): () => void {
    const { initialMs, maxMs } = this.options.reconnect ?? { initialMs: 500, maxMs: 8000 };
    const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, failures - 1));
    const random = this.options.random ?? Math.random;
    const delay = base / 2 + random() * (base / 2); // jitter: tabs of many users do not reconnect in step
    const setTimer = this.options.setTimer ?? ((callback: () => void, ms: number) => {
      const timer = setTimeout(callback, ms);
      return () => clearTimeout(timer);
    });
    return setTimer(run, delay);
  }

  // --- requests ---------------------------------------------------------------

  private async authorization(): Promise<Record<string, string>> {
    const token = await this.options.getAccessToken();
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  private async getJson<T>(path: string, withUser = true): Promise<T> {
    const response = await this.fetch(`${this.options.baseUrl}${path}`, {
      headers: withUser ? await this.authorization() : {},
      cache: 'no-store',
    });
    if (!response.ok) throw await apiError(response);
    try {
      return (await response.json()) as T;
    } catch {
      // e.g. an HTML page where the API should be (a static host's fallback).
      throw new TokenLimitsError('bad_response', `${path}: not JSON (${response.headers.get('content-type') ?? 'no content type'})`, response.status);
    }
  }

  // Fetches the snapshot now (after a reconnect, or on user request).
  async refresh(): Promise<void> {
    const snapshot = await this.getJson<UsageSnapshot>('/v1/me/usage');
    this.acceptSnapshot(snapshot);
  }

  // POST /v1/me/checkout for a plan (the pro plan when none is named) or a
  // credit pack, then off to the payment page; `redirectUrl` is where the
  // payment page sends the user afterwards. The new plan or the credits
  // arrive later, over the stream, when the provider's webhook lands.
  async startCheckout(request: CheckoutRequest = {}): Promise<string> {
    if (request.plan !== undefined && request.pack !== undefined) {
      throw new TokenLimitsError('invalid_value', 'a checkout buys a plan or a pack, not both');
    }
    const body: Record<string, string> = {};
    if (request.plan !== undefined) body.plan = request.plan;
    if (request.pack !== undefined) body.pack = request.pack;
    if (request.redirectUrl) body.redirect_url = request.redirectUrl;
    const reply = await this.postJson<{ url?: string; checkout_url?: string }>('/v1/me/checkout', body);
    const url = reply.url ?? reply.checkout_url;
    if (!url) throw new TokenLimitsError('checkout_failed', 'the server returned no checkout URL');
    this.navigateTo(url, request);
    return url;
  }

  // POST /v1/me/portal, then off to the provider's customer portal (plan
  // changes, cancelling, invoices). Its URL is signed and short-lived, so a
  // fresh one is asked for on every call. Rejects with code
  // 'no_subscription' for a user who never subscribed.
  async openPortal(options: NavigateOptions = {}): Promise<string> {
    const reply = await this.postJson<{ url?: string }>('/v1/me/portal', undefined);
    if (!reply.url) throw new TokenLimitsError('portal_failed', 'the server returned no portal URL');
    this.navigateTo(reply.url, options);
    return reply.url;
  }

  private async postJson<T>(path: string, body: unknown): Promise<T> {
    const response = await this.fetch(`${this.options.baseUrl}${path}`, {
      method: 'POST',
      headers: { ...(await this.authorization()), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw await apiError(response);
    try {
      return (await response.json()) as T;
    } catch {
      throw new TokenLimitsError('bad_response', `${path}: not JSON (${response.headers.get('content-type') ?? 'no content type'})`, response.status);
    }
  }

  private navigateTo(url: string, options: NavigateOptions) {
    (options.navigate ?? this.options.navigate ?? ((to: string) => globalThis.location.assign(to)))(url);
  }

  // --- estimates (synchronous once ready) -------------------------------------

  // The charge the server would reserve and the balance after it; null while
  // the wasm or the model's tokenizer is still loading (it is then fetched,
  // and subscribers are told when it is there).
  estimate = (input: EstimateInput): EstimateWithBalance | null => {
    if (!tm.isReady()) return null;
    const needsTokenizer = input.operation !== 'avatar' && input.inputTokens === undefined && input.model;
    if (needsTokenizer && !tm.tokenizerReady(input.model!)) {
      this.awaitTokenizer(input.model!);
      return null;
    }
    // A chat input with an output budget is still the same kind of input
    // (the cast: operation ids are open strings, so TypeScript cannot narrow
    // the union on 'chat').
    const withBudget = input.operation === 'chat' && input.maxOutputTokens === undefined
      ? ({ ...input, maxOutputTokens: this.options.defaultMaxOutputTokens ?? 0 } as EstimateInput)
      : input;
    const charge = tm.estimate(withBudget);
    // The core decides whether it fits, by the rule the server authorizes
    // with: a balance past its capacity (credits refunded after they were
    // spent) fits nothing, not even a charge of zero.
    const balance = { tokens: this.state.tokens ?? emptyQuota, avatars: this.state.avatars ?? emptyQuota };
    const after = tm.remainingAfter(balance, charge);
    return { ...charge, remainingTokens: after.tokens, remainingAvatars: after.avatars, fits: after.fits && this.state.tokens !== null };
  };

  canAfford = (input: EstimateInput): boolean => this.estimate(input)?.fits ?? false;

  // Asks for the model's tokenizer and tells subscribers when it settles,
  // once per load: estimate() runs during renders, and a failed load must
  // neither re-fetch nor re-notify (which would render again) each time.
  private awaitTokenizer(model: string) {
    const load = tm.loadTokenizer(model);
    if (this.tokenizerLoads.get(model) === load) return;
    this.tokenizerLoads.set(model, load);
    load.then(
      () => !this.stopped && this.update({}),
      (error: unknown) => !this.stopped && this.update({ error: describe(error) }),
    );
  }
}

export class TokenLimitsError extends Error {
  readonly code: string;
  readonly status: number | undefined;
  constructor(code: string, message: string, status?: number) {
    super(message);
    this.name = 'TokenLimitsError';
    this.code = code;
    this.status = status;
  }
}

async function apiError(response: Response): Promise<TokenLimitsError> {
  let code = response.status === 401 ? 'unauthorized' : `http_${response.status}`;
  let message = `HTTP ${response.status}`;
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // Not JSON: keep the status.
  }
  return new TokenLimitsError(code, message, response.status);
}

export function describe(error: unknown): { code: string; message: string } {
  if (error && typeof error === 'object' && 'code' in error && typeof (error as { code: unknown }).code === 'string') {
    return { code: (error as { code: string }).code, message: String((error as { message?: unknown }).message ?? '') };
  }
  return { code: 'network_error', message: error instanceof Error ? error.message : String(error) };
}

function stateOfClaims(claims: ReceiptClaims, balance: Balance): Partial<TokenLimitsFields> {
  const tokens = tokenQuota(balance.tokens);
  return {
    userId: claims.sub,
    plan: claims.plan,
    period: { start: claims.period_start, end: claims.period_end },
    tokens,
    avatars: avatarQuota(balance.avatars),
    credits: tokens.credits,
    seq: claims.seq,
    asOf: claims.iat * 1000,
  };
}
