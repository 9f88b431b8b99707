#include "ledger/ledger_service.hpp"

#include <iostream>

#include "storage/journal_codec.hpp"
#include "tokenmeter/assert.hpp"

namespace tokenmeter::ledger {

namespace codec = storage::journal_codec;

namespace {

LedgerRules rules_of(const LedgerConfig& config) {
    TM_ASSERT(config.prices != nullptr);
    TM_ASSERT(config.signing_key != nullptr);
    LedgerRules rules;  // the writer adds the price book batch by batch
    rules.reservation_ttl_seconds = config.reservation_ttl_seconds;
    rules.late_commit_grace_seconds = config.late_commit_grace_seconds;
    rules.default_plan = config.default_plan;
    return rules;
}

LedgerReply unavailable(const std::exception& error) {
    std::cerr << "tokenmeter: read failed: " << error.what() << "\n";
    return LedgerReply::of_kind(ReplyKind::unavailable);
}

}  // namespace

LedgerService::LedgerService(storage::LedgerStore& store, const Clock& clock, LedgerConfig config,
                             WriterOptions writer_options, RenderFn render, PublishFn publish)
    : store_(store),
      clock_(clock),
      config_(std::move(config)),
      rules_(rules_of(config_)),
      writer_(store, rules_, *config_.prices, *config_.signing_key, writer_options, [&clock] { return clock.now_seconds(); },
              std::move(render), std::move(publish)) {}

LedgerService::~LedgerService() { writer_.stop(); }

void LedgerService::stop() { writer_.stop(); }

JobOutcome LedgerService::run_job(Job job) { return writer_.run_job(std::move(job)); }

LedgerReply LedgerService::replay(const storage::StoredAnswer& answer) {
    LedgerReply reply;
    if (answer.change) {
        reply = reply_of_journal_row(*answer.change);
    } else {
        reply = LedgerReply::of_kind(ReplyKind::stored);
        reply.status = answer.status;
        reply.body = answer.response;
    }
    reply.replayed = true;
    return reply;
}

// What the writer does not hold, read here on the request's own thread: the
// account, and for a commit or release of a reservation the writer does not
// hold open, the reservation's journal rows (whose it is, how it ended).
void LedgerService::prefetch(Submission& submission, const std::string* reservation_id) {
    if (reservation_id != nullptr) {
        if (auto owner = writer_.owner_of(*reservation_id)) {
            submission.user_id = *owner;
        } else {
            submission.reservation_rows = store_.read_reservation_rows(*reservation_id);
            if (!submission.reservation_rows.empty()) submission.user_id = submission.reservation_rows.front().user_id;
        }
    }
    if (submission.user_id.empty() || writer_.holds(submission.user_id)) return;
    submission.account_prefetched = true;
    if (auto stored = store_.read_account(submission.user_id)) {
        submission.account = codec::account_from(*stored);
        submission.account_receipt = std::move(stored->head_receipt);
    }
}

LedgerReply LedgerService::run(Submission submission) {
    const std::string* reservation_id = nullptr;
    if (const auto* c = std::get_if<CommitCommand>(&submission.command)) reservation_id = &c->reservation_id;
    if (const auto* r = std::get_if<ReleaseCommand>(&submission.command)) reservation_id = &r->reservation_id;
    const std::optional<IdempotencyScope> scope = submission.idempotency;
    if (scope && !writer_.claim(*scope)) return LedgerReply::of_kind(ReplyKind::in_flight);
    try {
        if (scope) {
            // Claimed first, then looked up: an answer stored before the claim
            // is found, and none can be stored after it but by this request.
            auto stored = store_.read_answer(scope->caller, scope->key);
            const IdempotencyVerdict verdict =
                decide_idempotency(false, stored ? &stored->request_hash : nullptr, scope->request_hash);
            if (verdict != IdempotencyVerdict::execute) {
                writer_.unclaim(*scope);
                if (verdict == IdempotencyVerdict::key_reused) return LedgerReply::of_kind(ReplyKind::key_reused);
                return replay(*stored);
            }
        }
        prefetch(submission, reservation_id);
    } catch (const std::exception& error) {
        if (scope) writer_.unclaim(*scope);
        return unavailable(error);
    }
    return writer_.submit(std::move(submission));
}

LedgerReply LedgerService::authorize(AuthorizeCommand command, bool exact, std::optional<IdempotencyScope> idempotency) {
    Submission submission;
    submission.user_id = command.user_id;
    submission.command = std::move(command);
    submission.exact = exact;
    submission.idempotency = std::move(idempotency);
    return run(std::move(submission));
}

LedgerReply LedgerService::commit(CommitCommand command, std::optional<IdempotencyScope> idempotency) {
    Submission submission;
    submission.command = std::move(command);
    submission.idempotency = std::move(idempotency);
    return run(std::move(submission));
}

LedgerReply LedgerService::release(ReleaseCommand command, std::optional<IdempotencyScope> idempotency) {
    Submission submission;
    submission.command = std::move(command);
    submission.idempotency = std::move(idempotency);
    return run(std::move(submission));
}

LedgerReply LedgerService::record(RecordCommand command, std::optional<IdempotencyScope> idempotency) {
    Submission submission;
    submission.user_id = command.user_id;
    submission.command = std::move(command);
    submission.idempotency = std::move(idempotency);
    return run(std::move(submission));
}

LedgerReply LedgerService::snapshot(const std::string& user_id) {
    try {
        auto view = store_.read_view(user_id);
        if (view && clock_.now_seconds() < view->attention_at) {
            auto claims = decode_receipt_claims(view->last_receipt);
            if (!claims) throw storage::StorageError("a stored receipt does not decode: " + claims.error().message);
            LedgerReply reply;
            reply.claims = std::move(claims).value();
            reply.receipt = std::move(view->last_receipt);
            return reply;
        }
    } catch (const std::exception& error) {
        return unavailable(error);
    }
    // First use, or something lazy is due: the writer applies it with receipts.
    Submission submission;
    submission.user_id = user_id;
    submission.command = OpenCommand{user_id};
    return run(std::move(submission));
}

std::optional<EventsPage> LedgerService::events(const std::string& user_id, std::int64_t before_id, int limit) {
    try {
        EventsPage page;
        page.events = store_.read_events(user_id, before_id, limit + 1);
        if (static_cast<int>(page.events.size()) > limit) {
            page.events.pop_back();
            page.next_before = page.events.back().id;
        }
        return page;
    } catch (const std::exception& error) {
        std::cerr << "tokenmeter: read failed: " << error.what() << "\n";
        return std::nullopt;
    }
}

std::optional<UsageSummary> LedgerService::summary(const std::string& user_id, storage::SummaryGrouping grouping) {
    LedgerReply current = snapshot(user_id);
    if (current.kind != ReplyKind::done) return std::nullopt;
    try {
        return UsageSummary{current.claims, store_.read_summary(user_id, current.claims.period_start, grouping)};
    } catch (const std::exception& error) {
        std::cerr << "tokenmeter: read failed: " << error.what() << "\n";
        return std::nullopt;
    }
}

}  // namespace tokenmeter::ledger
