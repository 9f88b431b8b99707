#include "storage/sqlite/migrations.hpp"

#include "storage/sqlite/sqlite_db.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::storage::sqlite {

namespace {

// Times are unix seconds (UTC); counts are integers; multipliers exact text.
constexpr const char* ledger_tables = R"sql(
CREATE TABLE accounts (
  user_id        TEXT PRIMARY KEY,
  plan           TEXT NOT NULL,
  anchor_day     INTEGER NOT NULL CHECK (anchor_day BETWEEN 1 AND 31),
  period_start   INTEGER NOT NULL,
  seq            INTEGER NOT NULL CHECK (seq >= 0),
  last_receipt   TEXT NOT NULL,
  plan_ends_at   INTEGER,
  plan_after     TEXT NOT NULL DEFAULT '',
  attention_at   INTEGER NOT NULL,
  created_at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE usage_limits (
  user_id          TEXT NOT NULL,
  period_start     INTEGER NOT NULL,
  period_end       INTEGER NOT NULL,
  plan             TEXT NOT NULL,
  tokens_limit     INTEGER NOT NULL CHECK (tokens_limit >= 0),
  tokens_used      INTEGER NOT NULL CHECK (tokens_used >= 0),
  tokens_reserved  INTEGER NOT NULL CHECK (tokens_reserved >= 0),
  avatars_limit    INTEGER NOT NULL CHECK (avatars_limit >= 0),
  avatars_used     INTEGER NOT NULL CHECK (avatars_used >= 0),
  avatars_reserved INTEGER NOT NULL CHECK (avatars_reserved >= 0),
  PRIMARY KEY (user_id, period_start),
  CHECK (period_start < period_end)
) WITHOUT ROWID;

CREATE TABLE token_usage (
  id              INTEGER PRIMARY KEY,
  event_id        TEXT NOT NULL UNIQUE,
  user_id         TEXT NOT NULL,
  period_start    INTEGER NOT NULL,
  operation       TEXT NOT NULL,
  model           TEXT NOT NULL,
  input_tokens    INTEGER NOT NULL CHECK (input_tokens >= 0),
  output_tokens   INTEGER NOT NULL CHECK (output_tokens >= 0),
  raw_tokens      INTEGER NOT NULL CHECK (raw_tokens >= 0),
  multiplier      TEXT NOT NULL,
  charged_tokens  INTEGER NOT NULL CHECK (charged_tokens >= 0),
  avatars         INTEGER NOT NULL CHECK (avatars >= 0),
  reservation_id  TEXT,
  idempotency_key TEXT,
  catalog_version TEXT NOT NULL,
  created_at      INTEGER NOT NULL
);
CREATE INDEX token_usage_by_user ON token_usage (user_id, id);
CREATE INDEX token_usage_by_period ON token_usage (user_id, period_start);

CREATE TABLE reservations (
  id                     TEXT PRIMARY KEY,
  user_id                TEXT NOT NULL,
  operation              TEXT NOT NULL,
  model                  TEXT NOT NULL,
  multiplier_numerator   INTEGER NOT NULL,
  multiplier_denominator INTEGER NOT NULL,
  catalog_version        TEXT NOT NULL,
  tokens                 INTEGER NOT NULL CHECK (tokens >= 0),
  avatars                INTEGER NOT NULL CHECK (avatars >= 0),
  state                  TEXT NOT NULL CHECK (state IN ('open', 'committed', 'released', 'expired')),
  created_at             INTEGER NOT NULL,
  expires_at             INTEGER NOT NULL,
  settled_at             INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX reservations_open_by_user ON reservations (user_id, expires_at) WHERE state = 'open';

CREATE TABLE receipts (
  user_id    TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  jws        TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
  caller       TEXT NOT NULL,
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status       INTEGER NOT NULL,
  response     TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (caller, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
)sql";

// Billing (DESIGN.md §9): the newest snapshot of each provider subscription
// and whose it is, every verified webhook delivery, and the users that
// order_created named (orders reach a user before their subscription may).
// The SQL is portable to PostgreSQL as written (TEXT, INTEGER, BIGINT-sized
// unix seconds and microseconds).
// Idempotency records hold whole responses (about 1.3 KB with a receipt),
// too big to sit inside a WITHOUT ROWID b-tree page: every record spilled onto
// overflow pages at a random place in the key order. As a rowid table the
// records append in arrival order and only the small (caller, key) index
// entry lands at a random place.
constexpr const char* idempotency_rowid = R"sql(
CREATE TABLE idempotency_records (
  id           INTEGER PRIMARY KEY,
  caller       TEXT NOT NULL,
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status       INTEGER NOT NULL,
  response     TEXT NOT NULL,
  created_at   INTEGER NOT NULL
);
INSERT INTO idempotency_records (caller, key, request_hash, status, response, created_at)
  SELECT caller, key, request_hash, status, response, created_at FROM idempotency_keys ORDER BY created_at;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_records RENAME TO idempotency_keys;
CREATE UNIQUE INDEX idempotency_keys_by_key ON idempotency_keys (caller, key);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
)sql";

constexpr const char* billing_tables = R"sql(
CREATE TABLE subscriptions (
  subscription_id TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL,
  status          TEXT NOT NULL,
  variant_id      TEXT NOT NULL,
  customer_id     TEXT NOT NULL,
  order_id        TEXT NOT NULL,
  pause_free      INTEGER NOT NULL CHECK (pause_free IN (0, 1)),
  renews_at       INTEGER,
  ends_at         INTEGER,
  updated_at_us   INTEGER NOT NULL,
  attributes      TEXT NOT NULL,
  stored_at       INTEGER NOT NULL
);
CREATE INDEX subscriptions_by_user ON subscriptions (user_id);

CREATE TABLE webhook_events (
  id              TEXT PRIMARY KEY,
  webhook_id      TEXT NOT NULL,
  event_name      TEXT NOT NULL,
  subscription_id TEXT NOT NULL,
  user_id         TEXT NOT NULL,
  body            TEXT NOT NULL,
  received_at     INTEGER NOT NULL,
  deliveries      INTEGER NOT NULL CHECK (deliveries >= 1),
  applied_at      INTEGER,
  outcome         TEXT NOT NULL
);
CREATE INDEX webhook_events_by_webhook_id ON webhook_events (webhook_id);

CREATE TABLE billing_orders (
  order_id   TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
)sql";

// A charge from a commit that came after its reservation's expiry, within
// the grace period (DESIGN.md §5: authorized work is always charged). Rows
// written before this are on-time charges: late commits did not exist.
constexpr const char* late_charges = R"sql(
ALTER TABLE token_usage ADD COLUMN late INTEGER NOT NULL DEFAULT 0 CHECK (late IN (0, 1));
)sql";

// The journal (DESIGN.md §5): one row per ledger change with its receipt,
// stored once; the idempotency key of the request that made it. The account's
// terms move onto its current usage_limits row (read once to recover an
// account), with its open reservations as JSON. Tables that only mirrored
// the journal go: accounts, receipts. Reservations made before the journal
// keep their rows, renamed, for the commits that may still come for them
// (a late commit within the grace period). Stored answers of earlier
// requests stay in idempotency_keys until pruned; from now on it holds only
// answers that are not ledger changes (refusals).
constexpr const char* journal = R"sql(
CREATE TABLE ledger_journal (
  id              INTEGER PRIMARY KEY,
  user_id         TEXT NOT NULL,
  seq             INTEGER NOT NULL CHECK (seq >= 1),
  kind            TEXT NOT NULL,
  reservation_id  TEXT,
  change          TEXT NOT NULL,
  receipt         TEXT NOT NULL,
  caller          TEXT,
  idempotency_key TEXT,
  request_hash    TEXT,
  created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX ledger_journal_by_user ON ledger_journal (user_id, seq);
CREATE INDEX ledger_journal_by_reservation ON ledger_journal (reservation_id) WHERE reservation_id IS NOT NULL;
CREATE UNIQUE INDEX ledger_journal_by_key ON ledger_journal (caller, idempotency_key) WHERE idempotency_key IS NOT NULL;

ALTER TABLE usage_limits ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_limits ADD COLUMN anchor_day INTEGER NOT NULL DEFAULT 1 CHECK (anchor_day BETWEEN 1 AND 31);
ALTER TABLE usage_limits ADD COLUMN plan_ends_at INTEGER;
ALTER TABLE usage_limits ADD COLUMN plan_after TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_limits ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_limits ADD COLUMN reservations TEXT NOT NULL DEFAULT '[]';
ALTER TABLE usage_limits ADD COLUMN attention_at INTEGER NOT NULL DEFAULT 0;

UPDATE usage_limits SET seq = a.seq, anchor_day = a.anchor_day, plan_ends_at = a.plan_ends_at,
    plan_after = a.plan_after, created_at = a.created_at, attention_at = a.attention_at,
    reservations = (SELECT json_group_array(json_object(
        'id', r.id, 'user_id', r.user_id, 'operation', r.operation, 'model', r.model,
        'multiplier', CASE WHEN r.multiplier_denominator = 1 THEN CAST(r.multiplier_numerator AS TEXT)
                           ELSE r.multiplier_numerator || '/' || r.multiplier_denominator END,
        'catalog_version', r.catalog_version, 'tokens', r.tokens, 'avatars', r.avatars,
        'expires_at', r.expires_at, 'state', 'open', 'created_at', r.created_at, 'settled_at', 0))
      FROM (SELECT * FROM reservations WHERE user_id = a.user_id AND state = 'open' ORDER BY created_at, id) r)
  FROM accounts a WHERE a.user_id = usage_limits.user_id AND a.period_start = usage_limits.period_start;

ALTER TABLE reservations RENAME TO reservations_before_journal;
)sql";

constexpr const char* journal_after = R"sql(
DROP TABLE receipts;
DROP TABLE accounts;
)sql";

// Every receipt becomes its change's journal row; the change's kind is the
// receipt's `event` claim (SQLite cannot decode the base64url payload in SQL).
void receipts_into_journal(Connection& connection) {
    auto receipts = connection.prepare("SELECT user_id, seq, jws, created_at FROM receipts ORDER BY user_id, seq");
    auto insert = connection.prepare(
        "INSERT INTO ledger_journal (user_id, seq, kind, change, receipt, created_at) VALUES (?, ?, ?, ?, ?, ?)");
    while (receipts->step()) {
        const std::string jws = receipts->text(2);
        auto claims = decode_receipt_claims(jws);
        if (!claims) throw StorageError("migration 5: a stored receipt does not decode: " + claims.error().message);
        insert->bind(1, receipts->text(0)).bind(2, receipts->int64(1)).bind(3, claims->event);
        insert->bind(4, std::string_view(R"({"migrated":true})")).bind(5, jws).bind(6, receipts->int64(3)).run();
        insert->reset();
    }
}

// The outbound webhook outbox (DESIGN.md §13): one row per alert and
// endpoint URL, written in the transaction of the ledger change it reports
// and delivered at least once afterwards (server/alerts/). (alert_id, url)
// is unique, so an alert decided twice (a threshold crossed again, two
// writers) is one row and one delivery. `state` is pending until a 2xx
// (delivered) or until retry_until has passed (failed); a pending row is
// due at next_attempt_at, which a courier moves forward while it delivers
// (a lease, so a courier that dies mid-delivery leaves the row due again).
constexpr const char* alert_outbox = R"sql(
CREATE TABLE alert_outbox (
  id              INTEGER PRIMARY KEY,
  alert_id        TEXT NOT NULL,
  url             TEXT NOT NULL,
  type            TEXT NOT NULL,
  user_id         TEXT NOT NULL,
  body            TEXT NOT NULL,
  state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at INTEGER NOT NULL,
  retry_until     INTEGER NOT NULL,
  delivered_at    INTEGER,
  last_error      TEXT,
  created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX alert_outbox_by_alert ON alert_outbox (alert_id, url);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE state = 'pending';
)sql";

// Billing grows (DESIGN.md §9): pauses that end, payments refunded, and
// orders that carry credit packs, with what the ledger did about each.
constexpr const char* billing_refunds_and_packs = R"sql(
ALTER TABLE subscriptions ADD COLUMN pause_resumes_at INTEGER;
ALTER TABLE subscriptions ADD COLUMN last_payment_at INTEGER;
ALTER TABLE subscriptions ADD COLUMN refunded_until INTEGER;
CREATE INDEX subscriptions_by_customer ON subscriptions (customer_id);
ALTER TABLE billing_orders ADD COLUMN variant_id TEXT NOT NULL DEFAULT '';
ALTER TABLE billing_orders ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
ALTER TABLE billing_orders ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE billing_orders ADD COLUMN total INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0);
ALTER TABLE billing_orders ADD COLUMN refunded_amount INTEGER NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0);
ALTER TABLE billing_orders ADD COLUMN updated_at_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE billing_orders ADD COLUMN credited_tokens INTEGER NOT NULL DEFAULT 0 CHECK (credited_tokens >= 0);
ALTER TABLE billing_orders ADD COLUMN clawed_tokens INTEGER NOT NULL DEFAULT 0 CHECK (clawed_tokens >= 0);
CREATE INDEX billing_orders_by_customer ON billing_orders (customer_id);
)sql";

// Token classes (DESIGN.md §3): the parts of a charge's input and output
// that its model's class weights priced — cached input tokens and reasoning
// tokens. Rows written before this had no parts: 0 is what they were.
constexpr const char* token_classes = R"sql(
ALTER TABLE token_usage ADD COLUMN cached_input_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cached_input_tokens >= 0);
ALTER TABLE token_usage ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0);
)sql";

constexpr Migration all[] = {
    {1, "ledger tables", ledger_tables},
    {2, "billing: subscriptions, webhook events, orders", billing_tables},
    {3, "idempotency records in a rowid table", idempotency_rowid},
    {4, "token_usage.late: charges of commits after the reservation's expiry", late_charges},
    {5, "the ledger journal: one row per change with its receipt; accounts and receipts fold into it",
     journal, receipts_into_journal, journal_after},
    {6, "alert_outbox: outbound webhooks, one row per alert and endpoint", alert_outbox},
    {7, "billing: pause ends, refunded payments, credit pack orders", billing_refunds_and_packs},
    {8, "token_usage: cached input and reasoning tokens of a charge", token_classes},
};

}  // namespace

std::span<const Migration> migrations() { return all; }

}  // namespace tokenmeter::storage::sqlite
