#include "ledger/statements.hpp"

#include <iostream>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "ledger/views.hpp"
#include "storage/journal_codec.hpp"
#include "tokenmeter/period.hpp"
#include "tokenmeter/statement.hpp"

namespace tokenmeter::ledger {

namespace {

using Json = nlohmann::json;

constexpr int journal_page = 512;
// A charge committed between the journal read and the charges read has no
// receipt in what was read: the tail is read again, a few times at most.
constexpr int reread_max = 3;

ReceiptClaims claims_of(const std::string& receipt) {
    auto claims = decode_receipt_claims(receipt);
    if (!claims) throw storage::StorageError("a stored receipt does not decode: " + claims.error().message);
    return std::move(claims).value();
}

// The period_start of the user's receipt `seq`.
std::int64_t period_at(storage::LedgerStore& store, const std::string& user_id, std::int64_t seq) {
    auto rows = store.read_journal(user_id, seq, 1);
    if (rows.empty() || rows[0].seq != seq) {
        throw storage::StorageError("the journal of " + user_id.substr(0, 64) + " has no seq " + std::to_string(seq));
    }
    return claims_of(rows[0].receipt).period_start;
}

// Reads the period's receipts from seq `from` on into `statement`, noting the
// seq of each charge's event id.
void read_receipts(storage::LedgerStore& store, Statement& statement, std::int64_t period_start, std::int64_t from,
                   std::map<std::string, std::int64_t>& seq_of_event) {
    for (std::int64_t seq = from;;) {
        auto rows = store.read_journal(statement.user_id, seq, journal_page);
        for (storage::JournalRow& row : rows) {
            ReceiptClaims claims = claims_of(row.receipt);
            if (claims.period_start != period_start) return;
            if (row.kind == "commit" || row.kind == "record") {
                auto decoded = storage::journal_codec::decode_change(row);
                if (decoded.charge) seq_of_event[decoded.charge->event_id] = row.seq;
            }
            statement.seqs.push_back(row.seq);
            statement.receipts.push_back(std::move(row.receipt));
            statement.last = std::move(claims);
            seq = row.seq + 1;
        }
        if (static_cast<int>(rows.size()) < journal_page) return;
    }
}

// RFC 4180 quoting, and no cell a spreadsheet would run as a formula (OWASP:
// text starting with = + - @ is prefixed with a quote).
std::string csv_cell(std::string_view text, bool is_text = true) {
    std::string cell(text);
    if (is_text && !cell.empty() && (cell[0] == '=' || cell[0] == '+' || cell[0] == '-' || cell[0] == '@')) {
        cell.insert(cell.begin(), '\'');
    }
    if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
    std::string quoted = "\"";
    for (char c : cell) {
        if (c == '"') quoted += '"';
        quoted += c;
    }
    return quoted + "\"";
}

}  // namespace

StatementReply read_statement(LedgerService& ledger, const std::string& user_id, std::optional<std::int64_t> period_start) {
    StatementReply reply;
    storage::LedgerStore& store = ledger.store();
    try {
        // A past period of a user never seen is not found; reading the current
        // one opens the account, as GET /v1/me/usage does.
        if (period_start && !store.read_view(user_id)) {
            reply.outcome = StatementOutcome::not_found;
            return reply;
        }
    } catch (const std::exception& error) {
        std::cerr << "tokenmeter: read failed: " << error.what() << "\n";
        reply.outcome = StatementOutcome::unavailable;
        return reply;
    }
    // Brings the account up to date (rollover, expiry), with receipts.
    const LedgerReply head = ledger.snapshot(user_id);
    if (head.kind != ReplyKind::done) {
        reply.outcome = StatementOutcome::unavailable;
        return reply;
    }
    const std::int64_t wanted = period_start.value_or(head.claims.period_start);
    try {
        Statement& statement = reply.statement;
        statement.user_id = user_id;
        if (wanted > head.claims.period_start) {
            reply.outcome = StatementOutcome::not_found;
            return reply;
        }
        // Periods only move forward along the chain: the first seq of the
        // period is found by bisection over the journal.
        std::int64_t low = 1;
        std::int64_t high = head.claims.seq;  // period_at(high) >= wanted
        while (low < high) {
            const std::int64_t middle = low + (high - low) / 2;
            if (period_at(store, user_id, middle) >= wanted) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        if (period_at(store, user_id, low) != wanted) {
            reply.outcome = StatementOutcome::not_found;
            return reply;
        }
        if (low > 1) {
            auto anchor = store.read_journal(user_id, low - 1, 1);
            if (anchor.empty()) throw storage::StorageError("the journal lost seq " + std::to_string(low - 1));
            statement.anchor = std::move(anchor[0].receipt);
        }
        std::map<std::string, std::int64_t> seq_of_event;
        read_receipts(store, statement, wanted, low, seq_of_event);
        for (int attempt = 0;; ++attempt) {
            std::vector<storage::UsageEvent> events = store.read_period_charges(user_id, wanted);
            bool complete = true;
            statement.charges.clear();
            for (storage::UsageEvent& event : events) {
                auto seq = seq_of_event.find(event.event_id);
                if (seq == seq_of_event.end()) complete = false;
                statement.charges.push_back({std::move(event), seq == seq_of_event.end() ? 0 : seq->second});
            }
            if (complete || attempt == reread_max) break;
            read_receipts(store, statement, wanted, statement.seqs.back() + 1, seq_of_event);
        }
        return reply;
    } catch (const std::exception& error) {
        std::cerr << "tokenmeter: statement read failed: " << error.what() << "\n";
        reply.outcome = StatementOutcome::unavailable;
        return reply;
    }
}

std::string statement_json(const Statement& statement, std::string_view jwks_json) {
    Json charges = Json::array();
    std::int64_t tokens = 0;
    std::int64_t avatars = 0;
    for (const StatementCharge& charge : statement.charges) {
        const storage::UsageEvent& e = charge.event;
        charges.push_back({{"id", e.event_id},
                           {"operation", to_string(e.operation)},
                           {"model", e.model},
                           {"input_tokens", e.input_tokens},
                           {"output_tokens", e.output_tokens},
                           {"charged_tokens", e.charged_tokens},
                           {"avatars", e.avatars},
                           {"reservation_id", e.reservation_id.empty() ? Json(nullptr) : Json(e.reservation_id)},
                           {"created_at", format_rfc3339(e.created_at)},
                           {"late", e.late},
                           {"catalog_version", e.catalog_version},
                           {"seq", charge.seq}});
        // As in the usage events: the token class parts only when there are any.
        if (e.cached_input_tokens != 0) charges.back()["cached_input_tokens"] = e.cached_input_tokens;
        if (e.reasoning_tokens != 0) charges.back()["reasoning_tokens"] = e.reasoning_tokens;
        tokens += e.charged_tokens;
        avatars += e.avatars;
    }
    const ReceiptClaims& last = statement.last;
    Json body = {
        {"format", statement_format},
        {"user_id", statement.user_id},
        {"period", {{"start", format_rfc3339(last.period_start)}, {"end", format_rfc3339(last.period_end)}}},
        {"plan", last.plan},
        {"anchor", statement.anchor ? Json(*statement.anchor) : Json(nullptr)},
        {"receipts", statement.receipts},
        {"charges", std::move(charges)},
        // The sums of the charges; verify checks them against the last receipt.
        {"totals", {{"tokens_used", tokens}, {"avatars_used", avatars}}},
        {"keys", Json::parse(jwks_json)},
    };
    return body.dump();
}

std::string statement_csv(const Statement& statement) {
    std::map<std::int64_t, const std::string*> receipt_of;
    for (std::size_t i = 0; i < statement.seqs.size(); ++i) receipt_of[statement.seqs[i]] = &statement.receipts[i];
    std::string csv =
        "user_id,period_start,event_id,created_at,operation,model,input_tokens,output_tokens,charged_tokens,avatars,"
        "reservation_id,late,receipt_seq,receipt\r\n";
    const std::string user = csv_cell(statement.user_id);
    const std::string period = format_rfc3339(statement.last.period_start);
    for (const StatementCharge& charge : statement.charges) {
        const storage::UsageEvent& e = charge.event;
        auto receipt = receipt_of.find(charge.seq);
        csv += user + "," + period + "," + csv_cell(e.event_id) + "," + format_rfc3339(e.created_at) + "," +
               csv_cell(to_string(e.operation)) + "," + csv_cell(e.model) + "," + std::to_string(e.input_tokens) + "," +
               std::to_string(e.output_tokens) + "," + std::to_string(e.charged_tokens) + "," +
               std::to_string(e.avatars) + "," + csv_cell(e.reservation_id) + "," + (e.late ? "true" : "false") + "," +
               std::to_string(charge.seq) + "," + (receipt == receipt_of.end() ? std::string() : *receipt->second) +
               "\r\n";
    }
    return csv;
}

}  // namespace tokenmeter::ledger
