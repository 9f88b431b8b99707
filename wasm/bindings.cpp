// Embind bindings: the core as the browser and Node see it.
//
// Only free functions cross the boundary, and every one returns a plain JS
// object or value, so JavaScript never owns a C++ handle (nothing to delete()).
// Errors are values: {ok:false, code, message}; the JS wrapper (index.js) turns
// them into exceptions with codes where the SDK's API wants exceptions.
// Counts arrive as JS numbers; anything not an integer in [0, 2^53) is refused
// here with the same codes the core uses.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <optional>
#include <string>

#include "loaded_encodings.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokenmeter/crypto.hpp"
#include "tokenmeter/ed25519.hpp"
#include "tokenmeter/estimate.hpp"
#include "tokenmeter/jws.hpp"
#include "tokenmeter/ledger.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/period.hpp"
#include "tokenmeter/pricing.hpp"
#include "tokenmeter/receipt.hpp"
#include "tokenmeter/statement.hpp"
#include "tokenmeter/token_count.hpp"

namespace {

using emscripten::val;
using namespace tokenmeter;

// The catalog in use; the default until setCatalog() installs another.
std::optional<Catalog>& installed_catalog() {
    static std::optional<Catalog> catalog;
    return catalog;
}

const Catalog& catalog() {
    const auto& installed = installed_catalog();
    return installed ? *installed : default_catalog();
}

val error_object(const Error& error) {
    val out = val::object();
    out.set("ok", false);
    out.set("code", error.code);
    out.set("message", error.message);
    return out;
}

// A JS number as an int64 count: integers only; magnitudes past int64 are
// clamped to a value the core refuses for the right reason.
std::optional<std::int64_t> integer_of(double number) {
    if (!std::isfinite(number) || std::trunc(number) != number) return std::nullopt;
    if (number >= 9.2e18) return INT64_MAX;
    if (number <= -9.2e18) return INT64_MIN + 1;
    return static_cast<std::int64_t>(number);
}

val set_catalog(const std::string& json_text) {
    auto parsed = parse_catalog(json_text);
    if (!parsed) return error_object(parsed.error());
    installed_catalog() = std::move(parsed).value();
    val out = val::object();
    out.set("ok", true);
    return out;
}

std::string catalog_json() { return catalog_to_json(catalog()); }

// Whether a charge is exact: false when its model's tokenizer is an estimate.
bool priced_exactly(const Charge& charge) {
    const Model* model = catalog().find_model(charge.model);
    return model == nullptr || model->exact();
}

// A charge as the SDK's Charge (index.d.ts), with ok: true.
val charge_object(const Charge& charge, bool exact) {
    val out = val::object();
    out.set("ok", true);
    out.set("rawTokens", static_cast<double>(charge.raw_tokens));
    out.set("chargedTokens", static_cast<double>(charge.charged_tokens));
    out.set("avatars", static_cast<double>(charge.avatars));
    out.set("multiplier", to_string(charge.multiplier));
    out.set("exact", exact);
    return out;
}

val price_operation(const std::string& operation, const std::string& model, double input_tokens, double output_tokens) {
    auto input = integer_of(input_tokens);
    auto output = integer_of(output_tokens);
    if (!input || !output) return error_object(make_error("invalid_count", "token counts must be integers"));
    auto charge = price(catalog(), operation, model, *input, *output);
    if (!charge) return error_object(charge.error());
    return charge_object(*charge, priced_exactly(*charge));
}

// estimate()'s argument as the core's estimate rule takes it. Each member
// given is converted here and its error kept, so the rule decides which
// problem is reported first, as it does for the server's JSON.
template <typename T>
RequestField<T> refused_field(std::string code, std::string message) {
    return Result<T, Error>(unexpected(make_error(std::move(code), std::move(message))));
}

// A count: absent when undefined, 0 when null (as the SDK always read it),
// otherwise a safe non-negative integer (Number.isSafeInteger).
RequestField<std::int64_t> count_field(const val& input, const char* name) {
    const val value = input[name];
    if (value.isUndefined()) return std::nullopt;
    if (value.isNull()) return Result<std::int64_t, Error>(0);
    const double number = value.isNumber() ? value.as<double>() : -1;
    const bool safe = std::isfinite(number) && std::trunc(number) == number && number >= 0 &&
                      number <= static_cast<double>(limits::count_max);
    if (!safe) return refused_field<std::int64_t>("invalid_count", std::string(name) + " must be a non-negative integer");
    return Result<std::int64_t, Error>(static_cast<std::int64_t>(number));
}

RequestField<std::string> model_field(const val& input) {
    const val value = input["model"];
    if (value.isUndefined() || value.isNull()) return std::nullopt;
    if (!value.isString()) return refused_field<std::string>("invalid_value", "model must be a string");
    return Result<std::string, Error>(value.as<std::string>());
}

// The UTF-8 bytes the SDK encoded (TextEncoder), if the member was given.
std::optional<std::string> bytes_field(const val& input, const char* name) {
    const val value = input[name];
    if (value.isUndefined()) return std::nullopt;
    return value.as<std::string>();
}

// What the server would reserve for the same request (POST
// /v1/usage/authorize): the core's estimate rule, then its price with
// maxOutputTokens as the output. `input` is {operation, model, text,
// messages, inputTokens, maxOutputTokens}, text as UTF-8 bytes and messages
// as the UTF-8 bytes of their JSON.
val estimate_operation(const val& input) {
    const val operation = input["operation"];
    if (operation.isUndefined() || operation.isNull()) {
        return error_object(make_error("missing_field", "missing field operation"));
    }
    if (!operation.isString()) return error_object(make_error("invalid_value", "operation must be a string"));
    EstimateRequest request;
    request.operation = operation.as<std::string>();
    request.model = model_field(input);
    request.input_tokens = count_field(input, "inputTokens");
    request.max_output_tokens = count_field(input, "maxOutputTokens");
    const std::optional<std::string> text = bytes_field(input, "text");
    if (text) request.text = Result<std::string_view, Error>(std::string_view(*text));
    if (auto messages = bytes_field(input, "messages")) request.messages = parse_chat_messages(*messages);
    auto sized = estimate(catalog(), request, wasm::loaded_encodings());
    if (!sized) return error_object(sized.error());
    const std::string model = sized->model == nullptr ? std::string() : sized->model->id;
    auto charge = price(catalog(), to_string(sized->operation), model, sized->input_tokens, sized->max_output_tokens);
    if (!charge) return error_object(charge.error());
    // Exact only if the count is and the priced model counts exactly, as the
    // SDK has always said (so an avatar priced with a Claude model reads
    // inexact, where the server's authorize says exact).
    val out = charge_object(*charge, sized->exact && priced_exactly(*charge));
    out.set("inputTokens", static_cast<double>(sized->input_tokens));
    return out;
}

val period_containing_instant(double instant_seconds, int anchor_day) {
    auto instant = integer_of(instant_seconds);
    if (!instant) return error_object(make_error("instant_out_of_range", "the instant must be whole seconds"));
    auto period = period_containing(*instant, anchor_day);
    if (!period) return error_object(period.error());
    val out = val::object();
    out.set("ok", true);
    out.set("start", static_cast<double>(period->start_seconds));
    out.set("end", static_cast<double>(period->end_seconds));
    out.set("startText", format_rfc3339(period->start_seconds));
    out.set("endText", format_rfc3339(period->end_seconds));
    return out;
}

val claims_object(const ReceiptClaims& claims) {
    val out = val::object();
    out.set("iss", std::string(receipt_issuer));
    out.set("sub", claims.sub);
    out.set("iat", static_cast<double>(claims.iat));
    out.set("seq", static_cast<double>(claims.seq));
    out.set("prev", claims.prev);
    out.set("plan", claims.plan);
    out.set("period_start", format_rfc3339(claims.period_start));
    out.set("period_end", format_rfc3339(claims.period_end));
    out.set("tokens_limit", static_cast<double>(claims.balance.tokens_limit));
    out.set("tokens_used", static_cast<double>(claims.balance.tokens_used));
    out.set("tokens_reserved", static_cast<double>(claims.balance.tokens_reserved));
    out.set("avatars_limit", static_cast<double>(claims.balance.avatars_limit));
    out.set("avatars_used", static_cast<double>(claims.balance.avatars_used));
    out.set("avatars_reserved", static_cast<double>(claims.balance.avatars_reserved));
    // As in the payload: only receipts of accounts that ever held credits
    // claim them (receipt.cpp), so older receipts keep their exact shape here.
    if (claims.balance.credits != 0 || claims.balance.credits_clawed != 0) {
        out.set("credits", static_cast<double>(claims.balance.credits));
        out.set("credits_clawed", static_cast<double>(claims.balance.credits_clawed));
    }
    if (!claims.event.empty()) out.set("event", claims.event);
    if (!claims.catalog_version.empty()) out.set("catalog_version", claims.catalog_version);
    return out;
}

// A balance as the SDK's Balance (index.d.ts): the counts, and what the core
// derives from them (capacity = limit + credits, remaining never below
// zero), so no JavaScript re-derives the ledger's arithmetic.
val balance_object(const Balance& balance) {
    val tokens = val::object();
    tokens.set("limit", static_cast<double>(balance.tokens_limit));
    tokens.set("used", static_cast<double>(balance.tokens_used));
    tokens.set("reserved", static_cast<double>(balance.tokens_reserved));
    tokens.set("credits", static_cast<double>(balance.credits));
    tokens.set("capacity", static_cast<double>(balance.tokens_capacity()));
    tokens.set("remaining", static_cast<double>(balance.tokens_remaining()));
    val avatars = val::object();
    avatars.set("limit", static_cast<double>(balance.avatars_limit));
    avatars.set("used", static_cast<double>(balance.avatars_used));
    avatars.set("reserved", static_cast<double>(balance.avatars_reserved));
    avatars.set("remaining", static_cast<double>(balance.avatars_remaining()));
    val out = val::object();
    out.set("tokens", tokens);
    out.set("avatars", avatars);
    return out;
}

bool is_object(const val& value) { return !value.isNull() && value.typeOf().as<std::string>() == "object"; }

// A member of a JS object as a count in the ledger's range: [0, count_max],
// or [-count_max, count_max] where `signed_count` (credits may be a debt).
// Absent reads as `absent` (credits of a server before credit packs).
std::optional<std::int64_t> balance_count(const val& object, const char* name, bool signed_count,
                                          std::optional<std::int64_t> absent = std::nullopt) {
    const val value = object[name];
    if (value.isUndefined() || value.isNull()) return absent;
    if (!value.isNumber()) return std::nullopt;
    auto count = integer_of(value.as<double>());
    if (!count) return std::nullopt;
    const std::int64_t floor = signed_count ? -limits::count_max : 0;
    if (*count < floor || *count > limits::count_max) return std::nullopt;
    return count;
}

// A balance from the API's snapshot shape ({tokens: {limit, used, reserved,
// credits?}, avatars: {limit, used, reserved}}), checked against the same
// ranges a ledger balance keeps, so no input can trip the core's assertions.
Result<Balance, Error> balance_of(const val& snapshot) {
    const Error refused = make_error("invalid_count", "a balance needs tokens and avatars with integer limit, used and reserved "
                                                      "(and optional credits) within the ledger's range");
    if (!is_object(snapshot)) return unexpected(refused);
    const val tokens = snapshot["tokens"];
    const val avatars = snapshot["avatars"];
    if (!is_object(tokens) || !is_object(avatars)) return unexpected(refused);
    const std::optional<std::int64_t> counts[] = {
        balance_count(tokens, "limit", false),  balance_count(tokens, "used", false),
        balance_count(tokens, "reserved", false), balance_count(tokens, "credits", true, 0),
        balance_count(avatars, "limit", false), balance_count(avatars, "used", false),
        balance_count(avatars, "reserved", false),
    };
    for (const auto& count : counts) {
        if (!count) return unexpected(refused);
    }
    Balance balance;
    balance.tokens_limit = *counts[0];
    balance.tokens_used = *counts[1];
    balance.tokens_reserved = *counts[2];
    balance.credits = *counts[3];
    balance.avatars_limit = *counts[4];
    balance.avatars_used = *counts[5];
    balance.avatars_reserved = *counts[6];
    return balance;
}

// What is left of `snapshot` after a charge of `charged_tokens` and
// `avatars`, and whether the server would authorize it: the ledger's own
// rule (record(), which refuses exactly what authorize refuses), so a
// balance past its capacity (a refund took back spent credits, or a plan
// ended under what was used) refuses even a charge of nothing.
val remaining_after(const val& snapshot, double charged_tokens, double avatars) {
    auto balance = balance_of(snapshot);
    if (!balance) return error_object(balance.error());
    auto tokens = integer_of(charged_tokens);
    auto avatar_count = integer_of(avatars);
    if (!tokens || !avatar_count || *tokens < 0 || *avatar_count < 0 || *tokens > limits::count_max ||
        *avatar_count > limits::count_max) {
        return error_object(make_error("invalid_count", "a charge is a non-negative integer count"));
    }
    // A charge whose sum with what is used would leave the ledger's range
    // can never be authorized (the server answers count_overflow); checked
    // here because record() asserts its result is in range.
    const bool in_range = balance->tokens_used + balance->tokens_reserved + *tokens <= limits::count_max &&
                          balance->avatars_used + balance->avatars_reserved + *avatar_count <= limits::count_max;
    const bool fits = in_range && record(*balance, Amount{*tokens, *avatar_count}).has_value();
    val out = val::object();
    out.set("ok", true);
    out.set("tokens", static_cast<double>(balance->tokens_remaining() - *tokens));
    out.set("avatars", static_cast<double>(balance->avatars_remaining() - *avatar_count));
    out.set("fits", fits);
    return out;
}


val verify_receipt_with(const std::string& jws, const std::string& jwks_text) {
    val out = val::object();
    auto keys = parse_jwks(jwks_text);
    if (!keys) {
        out = error_object(keys.error());
        out.set("valid", false);
        return out;
    }
    auto claims = verify_receipt(jws, *keys);
    if (!claims) {
        out = error_object(claims.error());
        out.set("valid", false);
        return out;
    }
    out.set("ok", true);
    out.set("valid", true);
    out.set("claims", claims_object(*claims));
    out.set("balance", balance_object(claims->balance));
    out.set("chainDigest", receipt_chain_digest(jws));
    return out;
}

// A statement (GET /v1/me/statement) checked by the core's one verifier,
// against the JWKS given, or the statement's own keys when it is empty.
val verify_statement_with(const std::string& statement, const std::string& jwks_text) {
    auto keys = jwks_text.empty() ? statement_keys(statement) : parse_jwks(jwks_text);
    auto summary = keys ? verify_statement(statement, *keys) : Result<StatementSummary, Error>(unexpected(keys.error()));
    if (!summary) {
        val out = error_object(summary.error());
        out.set("valid", false);
        return out;
    }
    val out = val::object();
    out.set("ok", true);
    out.set("valid", true);
    out.set("userId", summary->user_id);
    out.set("plan", summary->plan);
    out.set("periodStart", format_rfc3339(summary->period_start));
    out.set("periodEnd", format_rfc3339(summary->period_end));
    out.set("firstSeq", static_cast<double>(summary->first_seq));
    out.set("lastSeq", static_cast<double>(summary->last_seq));
    out.set("receipts", static_cast<double>(summary->receipts));
    out.set("charges", static_cast<double>(summary->charges));
    out.set("anchored", summary->anchored);
    out.set("tokensUsed", static_cast<double>(summary->tokens_used));
    out.set("avatarsUsed", static_cast<double>(summary->avatars_used));
    out.set("pinned", !jwks_text.empty());
    return out;
}

// Ed25519 verification over raw bytes, for the Wycheproof vectors.
bool ed25519_verify_bytes(const std::string& message, const std::string& signature, const std::string& public_key) {
    if (public_key.size() != ed25519_public_key_bytes) return false;
    PublicKey key;
    std::copy(public_key.begin(), public_key.end(), key.bytes.begin());
    return ed25519_verify(message, signature, key);
}

// Signs with a base64url seed; for known-answer tests (RFC 8037) only.
val sign_compact_with_seed(const std::string& header_json, const std::string& payload, const std::string& seed_text) {
    auto bytes = base64url_decode(seed_text);
    if (!bytes || bytes->size() != ed25519_seed_bytes) {
        return error_object(make_error("invalid_seed", "the seed must be 32 bytes in base64url"));
    }
    Seed seed{};
    std::copy(bytes->begin(), bytes->end(), seed.begin());
    const SigningKey key = SigningKey::from_seed(seed);
    val out = val::object();
    out.set("ok", true);
    out.set("jws", sign_compact(header_json, payload, key));
    out.set("kid", key.kid());
    return out;
}

bool ready() { return crypto_ready(); }

}  // namespace

EMSCRIPTEN_BINDINGS(tokenmeter) {
    emscripten::function("ready", &ready);
    emscripten::function("setCatalog", &set_catalog);
    emscripten::function("catalogJson", &catalog_json);
    emscripten::function("price", &price_operation);
    emscripten::function("estimate", &estimate_operation);
    emscripten::function("periodContaining", &period_containing_instant);
    emscripten::function("verifyReceipt", &verify_receipt_with);
    emscripten::function("remainingAfter", &remaining_after);
    emscripten::function("verifyStatement", &verify_statement_with);
    emscripten::function("ed25519Verify", &ed25519_verify_bytes);
    emscripten::function("signCompact", &sign_compact_with_seed);
}
