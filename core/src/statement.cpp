#include "tokenmeter/statement.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "tokenmeter/json_input.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/period.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter {

namespace {

using json_input::Json;

Error fail(std::string code, std::string message) { return make_error(std::move(code), std::move(message)); }
Error malformed(std::string message) { return fail("malformed", std::move(message)); }

const Json* member(const Json& object, std::string_view key) {
    auto found = object.find(std::string(key));
    return found == object.end() ? nullptr : &*found;
}

Result<std::string, Error> text_member(const Json& object, std::string_view key, std::string_view where) {
    auto value = json_input::string_member(object, key, where);
    if (!value) return unexpected(malformed(value.error().message));
    return std::move(value).value();
}

Result<std::int64_t, Error> count(const Json& object, std::string_view key, std::string_view where) {
    auto value = json_input::count_member(object, key, where, limits::count_max);
    if (!value) return unexpected(malformed(value.error().message));
    return *value;
}

Result<std::int64_t, Error> instant_member(const Json& object, std::string_view key, std::string_view where) {
    auto text = text_member(object, key, where);
    if (!text) return unexpected(text.error());
    auto instant = parse_rfc3339(*text);
    if (!instant) return unexpected(malformed(json_input::path(where, key) + ": " + instant.error().message));
    return *instant;
}

struct StatedCharge {
    std::string id;
    std::int64_t charged_tokens = 0;
    std::int64_t avatars = 0;
    std::int64_t seq = 0;
    std::string catalog_version;  // empty in statements made before the price book was dated
};

// The statement as stated, before any of it is believed.
struct Stated {
    std::string user_id;
    std::string plan;
    std::int64_t period_start = 0;
    std::int64_t period_end = 0;
    std::optional<std::string> anchor;
    std::vector<std::string> receipts;
    std::vector<StatedCharge> charges;
    std::int64_t tokens_used = 0;
    std::int64_t avatars_used = 0;
};

Result<Json, Error> parse_document(std::string_view json_text) {
    auto document = json_input::parse(json_text);
    if (!document || !document->is_object()) {
        return unexpected(malformed("not a JSON statement (verify reads the JSON form; the CSV is for spreadsheets)"));
    }
    auto format = text_member(*document, "format", "statement");
    if (!format) return unexpected(format.error());
    if (*format != statement_format) {
        return unexpected(malformed("statement.format is \"" + json_input::utf8_prefix(*format, 64) + "\", not \"" +
                                    std::string(statement_format) + "\""));
    }
    return document;
}

Result<std::string, Error> receipt_text(const Json& value, std::string_view what) {
    if (!value.is_string()) return unexpected(malformed(std::string(what) + " must be a compact JWS string"));
    return value.get_ref<const std::string&>();
}

Result<StatedCharge, Error> read_charge(const Json& value, std::size_t index) {
    const std::string where = "statement.charges[" + std::to_string(index) + "]";
    if (!value.is_object()) return unexpected(malformed(where + " must be an object"));
    StatedCharge charge;
    auto id = text_member(value, "id", where);
    if (!id) return unexpected(id.error());
    charge.id = std::move(id).value();
    for (auto [key, target] : {std::pair<std::string_view, std::int64_t*>{"charged_tokens", &charge.charged_tokens},
                               {"avatars", &charge.avatars},
                               {"seq", &charge.seq}}) {
        auto number = count(value, key, where);
        if (!number) return unexpected(number.error());
        *target = *number;
    }
    if (value.contains("catalog_version")) {
        auto version = text_member(value, "catalog_version", where);
        if (!version) return unexpected(version.error());
        charge.catalog_version = std::move(version).value();
    }
    return charge;
}

Result<Stated, Error> read_statement(const Json& document) {
    Stated stated;
    auto user = text_member(document, "user_id", "statement");
    if (!user) return unexpected(user.error());
    stated.user_id = std::move(user).value();
    auto plan = text_member(document, "plan", "statement");
    if (!plan) return unexpected(plan.error());
    stated.plan = std::move(plan).value();

    const Json* period = member(document, "period");
    if (period == nullptr || !period->is_object()) return unexpected(malformed("statement.period must be an object"));
    auto start = instant_member(*period, "start", "statement.period");
    if (!start) return unexpected(start.error());
    auto end = instant_member(*period, "end", "statement.period");
    if (!end) return unexpected(end.error());
    stated.period_start = *start;
    stated.period_end = *end;

    const Json* anchor = member(document, "anchor");
    if (anchor == nullptr) return unexpected(malformed("statement.anchor is missing (null when there is none)"));
    if (!anchor->is_null()) {
        auto text = receipt_text(*anchor, "statement.anchor");
        if (!text) return unexpected(text.error());
        stated.anchor = std::move(text).value();
    }

    const Json* receipts = member(document, "receipts");
    if (receipts == nullptr || !receipts->is_array() || receipts->empty()) {
        return unexpected(malformed("statement.receipts must be a non-empty array"));
    }
    for (std::size_t i = 0; i < receipts->size(); ++i) {
        auto text = receipt_text((*receipts)[i], "statement.receipts[" + std::to_string(i) + "]");
        if (!text) return unexpected(text.error());
        stated.receipts.push_back(std::move(text).value());
    }

    const Json* charges = member(document, "charges");
    if (charges == nullptr || !charges->is_array()) return unexpected(malformed("statement.charges must be an array"));
    for (std::size_t i = 0; i < charges->size(); ++i) {
        auto charge = read_charge((*charges)[i], i);
        if (!charge) return unexpected(charge.error());
        stated.charges.push_back(std::move(charge).value());
    }

    const Json* totals = member(document, "totals");
    if (totals == nullptr || !totals->is_object()) return unexpected(malformed("statement.totals must be an object"));
    auto tokens = count(*totals, "tokens_used", "statement.totals");
    if (!tokens) return unexpected(tokens.error());
    auto avatars = count(*totals, "avatars_used", "statement.totals");
    if (!avatars) return unexpected(avatars.error());
    stated.tokens_used = *tokens;
    stated.avatars_used = *avatars;
    return stated;
}

// Checks one receipt's signature and claims: malformed or bad_signature.
Result<ReceiptClaims, Error> check_receipt(std::string_view jws, const std::vector<VerificationKey>& keys,
                                           const std::string& what) {
    auto claims = verify_receipt(jws, keys);
    if (claims) return claims;
    const std::string& code = claims.error().code;
    if (code == "signature_invalid") return unexpected(fail("bad_signature", what + ": the signature does not verify"));
    if (code == "receipt_unknown_key") {
        return unexpected(fail("bad_signature", what + ": signed by a key that is not among the keys (" +
                                                    claims.error().message + ")"));
    }
    return unexpected(malformed(what + ": " + claims.error().message));
}

std::string seq_text(std::int64_t seq) { return "receipt seq " + std::to_string(seq); }

bool is_charge_event(const ReceiptClaims& claims) { return claims.event == "commit" || claims.event == "record"; }

}  // namespace

Result<StatementSummary, Error> verify_statement(std::string_view json_text, const std::vector<VerificationKey>& keys) {
    auto document = parse_document(json_text);
    if (!document) return unexpected(document.error());
    auto read = read_statement(*document);
    if (!read) return unexpected(read.error());
    const Stated& stated = *read;

    // Signatures first: nothing a receipt says is believed before it verifies.
    std::optional<ReceiptClaims> anchor;
    if (stated.anchor) {
        auto claims = check_receipt(*stated.anchor, keys, "the anchor receipt");
        if (!claims) return unexpected(claims.error());
        anchor = std::move(claims).value();
    }
    std::vector<ReceiptClaims> receipts;
    receipts.reserve(stated.receipts.size());
    for (std::size_t i = 0; i < stated.receipts.size(); ++i) {
        auto claims = check_receipt(stated.receipts[i], keys, "receipts[" + std::to_string(i) + "]");
        if (!claims) return unexpected(claims.error());
        receipts.push_back(std::move(claims).value());
    }

    // Whose.
    if (anchor && anchor->sub != stated.user_id) {
        return unexpected(fail("wrong_user", "the anchor receipt is " + json_input::utf8_prefix(anchor->sub, 128) +
                                                 "'s, not " + json_input::utf8_prefix(stated.user_id, 128) + "'s"));
    }
    for (const ReceiptClaims& claims : receipts) {
        if (claims.sub != stated.user_id) {
            return unexpected(fail("wrong_user", seq_text(claims.seq) + " is " + json_input::utf8_prefix(claims.sub, 128) +
                                                     "'s, not " + json_input::utf8_prefix(stated.user_id, 128) + "'s"));
        }
    }

    // Which period.
    for (const ReceiptClaims& claims : receipts) {
        if (claims.period_start != stated.period_start) {
            return unexpected(fail("period_mismatch", seq_text(claims.seq) + " is of the period starting " +
                                                          format_rfc3339(claims.period_start) + ", not " +
                                                          format_rfc3339(stated.period_start)));
        }
    }
    if (anchor && anchor->period_start >= stated.period_start) {
        return unexpected(fail("period_mismatch", "the anchor receipt (seq " + std::to_string(anchor->seq) +
                                                      ") is not of an earlier period: receipts of the period are missing"));
    }
    const ReceiptClaims& last = receipts.back();
    if (last.period_end != stated.period_end) {
        return unexpected(fail("period_mismatch", "statement.period.end is not the last receipt's period_end (" +
                                                      format_rfc3339(last.period_end) + ")"));
    }
    if (last.plan != stated.plan) {
        return unexpected(fail("period_mismatch", "statement.plan is not the last receipt's plan (" +
                                                      json_input::utf8_prefix(last.plan, 64) + ")"));
    }

    // The chain.
    const ReceiptClaims& first = receipts.front();
    if (anchor) {
        if (first.seq != anchor->seq + 1) {
            return unexpected(fail("broken_chain", "the first receipt is seq " + std::to_string(first.seq) +
                                                       ", the anchor seq " + std::to_string(anchor->seq) +
                                                       ": receipts are missing between them"));
        }
        if (first.prev != receipt_chain_digest(*stated.anchor)) {
            return unexpected(fail("broken_chain", seq_text(first.seq) + ": prev is not the anchor's digest"));
        }
    } else if (first.seq != 1) {
        return unexpected(fail("broken_chain", "the first receipt is seq " + std::to_string(first.seq) +
                                                   " and the statement has no anchor to chain it to"));
    }
    for (std::size_t i = 1; i < receipts.size(); ++i) {
        if (receipts[i].seq != receipts[i - 1].seq + 1) {
            return unexpected(fail("broken_chain", "receipts[" + std::to_string(i) + "] is seq " +
                                                       std::to_string(receipts[i].seq) + " after seq " +
                                                       std::to_string(receipts[i - 1].seq)));
        }
        if (receipts[i].prev != receipt_chain_digest(stated.receipts[i - 1])) {
            return unexpected(fail("broken_chain", seq_text(receipts[i].seq) + ": prev is not the digest of seq " +
                                                       std::to_string(receipts[i - 1].seq)));
        }
    }

    // The charges against the moves of `used`.
    std::map<std::int64_t, const StatedCharge*> by_seq;
    std::int64_t tokens_sum = 0;
    std::int64_t avatars_sum = 0;
    for (const StatedCharge& charge : stated.charges) {
        const std::string which = "charge " + json_input::utf8_prefix(charge.id, 64);
        if (charge.seq < first.seq || charge.seq > last.seq) {
            return unexpected(fail("charge_mismatch", which + " names seq " + std::to_string(charge.seq) +
                                                          ", which is not a receipt of this statement"));
        }
        if (!by_seq.emplace(charge.seq, &charge).second) {
            return unexpected(fail("charge_mismatch", which + " names seq " + std::to_string(charge.seq) +
                                                          ", which another charge names too"));
        }
        tokens_sum += charge.charged_tokens;  // each at most 2^53: no overflow for any real count of charges
        avatars_sum += charge.avatars;
        if (tokens_sum > limits::count_max || avatars_sum > limits::count_max) {
            return unexpected(fail("charge_mismatch", "the charges add up past any balance"));
        }
    }
    for (std::size_t i = 0; i < receipts.size(); ++i) {
        const ReceiptClaims& claims = receipts[i];
        auto charged = by_seq.find(claims.seq);
        const bool charge_receipt = is_charge_event(claims);
        if (charged != by_seq.end() && !charge_receipt) {
            return unexpected(fail("charge_mismatch", "charge " + json_input::utf8_prefix(charged->second->id, 64) +
                                                          " names " + seq_text(claims.seq) + ", a " +
                                                          json_input::utf8_prefix(claims.event, 32) +
                                                          " receipt, not a commit or record"));
        }
        // The receipt signs the price book version it was priced with; the
        // charge must say the same (both are absent before versions were claimed).
        if (charged != by_seq.end() && !claims.catalog_version.empty() &&
            charged->second->catalog_version != claims.catalog_version) {
            return unexpected(fail("charge_mismatch", "charge " + json_input::utf8_prefix(charged->second->id, 64) +
                                                          " says catalog version \"" +
                                                          json_input::utf8_prefix(charged->second->catalog_version, 64) +
                                                          "\", its receipt " + seq_text(claims.seq) + " says \"" +
                                                          claims.catalog_version + "\""));
        }
        if (charged == by_seq.end() && charge_receipt) {
            return unexpected(fail("charge_mismatch", seq_text(claims.seq) + " (" + claims.event +
                                                          ") has no charge in the statement"));
        }
        if (i == 0) {
            // The period's first receipt opens it; nothing before it in the period to move from.
            if (charge_receipt) {
                return unexpected(fail("charge_mismatch", seq_text(claims.seq) +
                                                              " is a charge but the first receipt of the period"));
            }
            continue;
        }
        const Balance& before = receipts[i - 1].balance;
        const std::int64_t tokens_moved = claims.balance.tokens_used - before.tokens_used;
        const std::int64_t avatars_moved = claims.balance.avatars_used - before.avatars_used;
        const std::int64_t tokens_charged = charge_receipt ? charged->second->charged_tokens : 0;
        const std::int64_t avatars_charged = charge_receipt ? charged->second->avatars : 0;
        if (tokens_moved != tokens_charged || avatars_moved != avatars_charged) {
            return unexpected(fail("charge_mismatch",
                                   seq_text(claims.seq) + " moved used by " + std::to_string(tokens_moved) +
                                       " tokens and " + std::to_string(avatars_moved) + " avatars, its charge is " +
                                       std::to_string(tokens_charged) + " tokens and " +
                                       std::to_string(avatars_charged) + " avatars"));
        }
    }
    // The first receipt's own used counts are the period's opening balance
    // (0); with the moves matched above, the sums then equal the last used.
    if (tokens_sum + first.balance.tokens_used != last.balance.tokens_used ||
        avatars_sum + first.balance.avatars_used != last.balance.avatars_used || first.balance.tokens_used != 0 ||
        first.balance.avatars_used != 0) {
        return unexpected(fail("charge_mismatch", "the charges add up to " + std::to_string(tokens_sum) +
                                                      " tokens and " + std::to_string(avatars_sum) +
                                                      " avatars, the last receipt says " +
                                                      std::to_string(last.balance.tokens_used) + " and " +
                                                      std::to_string(last.balance.avatars_used)));
    }
    if (stated.tokens_used != last.balance.tokens_used || stated.avatars_used != last.balance.avatars_used) {
        return unexpected(fail("charge_mismatch", "statement.totals are not the last receipt's used (" +
                                                      std::to_string(last.balance.tokens_used) + " tokens, " +
                                                      std::to_string(last.balance.avatars_used) + " avatars)"));
    }

    StatementSummary summary;
    summary.user_id = stated.user_id;
    summary.plan = last.plan;
    summary.period_start = stated.period_start;
    summary.period_end = last.period_end;
    summary.first_seq = first.seq;
    summary.last_seq = last.seq;
    summary.receipts = receipts.size();
    summary.anchored = anchor.has_value();
    summary.charges = stated.charges.size();
    summary.tokens_used = last.balance.tokens_used;
    summary.avatars_used = last.balance.avatars_used;
    return summary;
}

Result<std::vector<VerificationKey>, Error> statement_keys(std::string_view json_text) {
    auto document = parse_document(json_text);
    if (!document) return unexpected(document.error());
    const Json* keys = member(*document, "keys");
    if (keys == nullptr || !keys->is_object()) return unexpected(malformed("statement.keys must be a JWKS object"));
    // The document parsed, so it is valid UTF-8 and dumps without failing.
    auto parsed = parse_jwks(keys->dump());
    if (!parsed) return unexpected(malformed("statement.keys: " + parsed.error().message));
    if (parsed->empty()) return unexpected(malformed("statement.keys holds no Ed25519 key"));
    return parsed;
}

Result<std::optional<std::int64_t>, Error> parse_statement_period(std::string_view text) {
    if (text.empty() || text == "current") return std::optional<std::int64_t>();
    auto invalid = [] {
        return unexpected(make_error("invalid_value",
                                     "period must be current, or a period start as an RFC 3339 date or instant"));
    };
    if (text.size() == 10) {
        // YYYY-MM-DD: midnight UTC.
        auto digit = [&](std::size_t i) { return text[i] >= '0' && text[i] <= '9'; };
        for (std::size_t i : {0U, 1U, 2U, 3U, 5U, 6U, 8U, 9U}) {
            if (!digit(i)) return invalid();
        }
        if (text[4] != '-' || text[7] != '-') return invalid();
        auto number = [&](std::size_t at, std::size_t size) {
            std::int32_t n = 0;
            for (std::size_t i = at; i < at + size; ++i) n = n * 10 + static_cast<std::int32_t>(text[i] - '0');
            return n;
        };
        const CivilDate date{number(0, 4), static_cast<std::uint32_t>(number(5, 2)),
                             static_cast<std::uint32_t>(number(8, 2))};
        if (date.year < 1970 || date.month < 1 || date.month > 12 || date.day < 1 ||
            date.day > days_in_month(date.year, date.month)) {
            return invalid();
        }
        const std::int64_t instant = days_from_civil(date) * 86400;
        if (instant >= limits::instant_end) return invalid();
        return std::optional<std::int64_t>(instant);
    }
    auto instant = parse_rfc3339(text);
    if (!instant || *instant < limits::instant_min) return invalid();
    return std::optional<std::int64_t>(*instant);
}

}  // namespace tokenmeter
