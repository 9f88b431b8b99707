#include "http/api.hpp"

#include "http/edge_stream.hpp"
#include "http/http_server.hpp"

#include <httplib.h>

#include <chrono>
#include <iostream>

#include "tokenmeter/base64url.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/receipt.hpp"
#include "tokenmeter/period.hpp"
#include "ledger/statements.hpp"
#include "ledger/views.hpp"
#include "tokenmeter/statement.hpp"
#include "http/ledger_replies.hpp"

namespace tokenmeter::http {

namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr const char* json_type = "application/json";


std::string_view header(const Request& request, const char* name) {
    auto found = request.headers.find(name);
    return found == request.headers.end() ? std::string_view() : std::string_view(found->second);
}

bool is_loopback(const std::string& address) {
    return address == "127.0.0.1" || address == "::1" || address == "::ffff:127.0.0.1";
}

std::string sse_event(const std::string& snapshot, std::int64_t seq) {
    // The snapshot is compact JSON (no newlines), so one data line suffices.
    std::string event = "event: usage\n";
    if (seq > 0) event += "id: " + std::to_string(seq) + "\n";
    event += "data: " + snapshot + "\n\n";
    return event;
}

}  // namespace

void reply_error(Response& response, int status, std::string_view code, std::string_view message) {
    response.status = status;
    response.set_content(ledger::error_body(code, message), json_type);
}

std::function<void(const Request&, Response&)> timed_route(RouteSet::Observe observe, std::string route,
                                                           std::function<void(const Request&, Response&)> handler) {
    return [observe = std::move(observe), route = std::move(route), handler = std::move(handler)](const Request& q,
                                                                                                   Response& s) {
        const auto start = std::chrono::steady_clock::now();
        handler(q, s);
        const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
        // A handler that sets no status answers 200 (httplib fills it in later).
        observe(route, s.status == -1 ? 200 : s.status, elapsed.count());
    };
}

Api::Api(ApiDependencies dependencies, ApiOptions options) : deps_(dependencies), options_(std::move(options)) {}

void Api::add_routes(std::shared_ptr<RouteSet> routes) { route_sets_.push_back(std::move(routes)); }

Api::Handler Api::timed(std::string route, Handler handler) {
    return timed_route([this](const std::string& r, int status, double seconds) { deps_.metrics.observe_request(r, status, seconds); },
                       std::move(route), std::move(handler));
}

void Api::reply(Response& response, const ledger::LedgerReply& reply) {
    const RenderedReply rendered = render_reply(reply, options_.reply_style);
    response.status = rendered.status;
    response.set_content(rendered.body, json_type);
    if (reply.replayed) return;  // metered when first answered
    if (reply.command == ledger::Command::authorize &&
        (reply.kind == ledger::ReplyKind::done || reply.kind == ledger::ReplyKind::refused)) {
        deps_.metrics.count_authorization(reply.kind == ledger::ReplyKind::done);
    }
    if (reply.kind == ledger::ReplyKind::done && reply.charge) {
        const Charge& charge = reply.charge->charge;
        deps_.metrics.count_charge(charge.model, std::string(to_string(charge.operation)), charge.charged_tokens);
    }
}

std::optional<std::string> Api::require_user(const Request& request, Response& response) {
    auto session = deps_.callers.user(request, response);
    if (!session) return std::nullopt;
    return std::move(session->user_id);
}

std::optional<std::string> Api::require_service(const Request& request, Response& response) {
    return deps_.callers.service(request, response);
}

void Api::healthz(const Request&, Response& response) {
    const bool storage = deps_.ledger.store().healthy();
    response.status = storage ? 200 : 503;
    response.set_content(Json{{"status", storage ? "ok" : "degraded"}, {"storage", storage ? "ok" : "unavailable"}}.dump(),
                         json_type);
}

void Api::metrics(const Request& request, Response& response) {
    const std::string_view authorization = header(request, "Authorization");
    const bool token_ok = !options_.metrics_token.empty() && authorization == "Bearer " + options_.metrics_token;
    if (!is_loopback(request.remote_addr) && !token_ok) {
        reply_error(response, 403, "forbidden", "metrics are served to loopback or with the metrics token");
        return;
    }
    response.set_content(deps_.metrics.render(), "text/plain; version=0.0.4");
}

void Api::my_usage(const Request& request, Response& response) {
    auto user = require_user(request, response);
    if (!user) return;
    const ledger::LedgerReply snapshot = deps_.ledger.snapshot(*user);
    reply(response, snapshot);
    if (snapshot.kind != ledger::ReplyKind::done || response.status != 200) return;
    nlohmann::json body = nlohmann::json::parse(response.body);
    ledger::add_alert_thresholds(body, options_.alert_thresholds_percent);
    response.set_content(body.dump(), json_type);
}

std::string Api::user_snapshot(const std::string& snapshot) const {
    nlohmann::json body = nlohmann::json::parse(snapshot);
    ledger::add_alert_thresholds(body, options_.alert_thresholds_percent);
    return body.dump();
}

void Api::my_usage_stream(const Request& request, Response& response) {
    auto session = deps_.callers.user(request, response);
    if (!session) return;
    // Watch before reading, so no change between the read and the watch is missed.
    auto subscribed = deps_.hub.subscribe(session->user_id);
    if (!subscribed.subscription) {
        refuse_stream(response, *subscribed.refusal);
        return;
    }
    const ledger::LedgerReply first = deps_.ledger.snapshot(session->user_id);
    if (first.kind != ledger::ReplyKind::done) {
        reply(response, first);
        return;
    }
    struct Sent {
        std::shared_ptr<live::UsageHub::Subscription> subscription;
        std::int64_t seq = 0;  // of the newest snapshot sent
    };
    const std::int64_t first_seq = first.claims.seq;
    auto sent = std::make_shared<Sent>(Sent{std::move(subscribed.subscription), first_seq});
    EventStream stream;
    stream.key = session->user_id;
    // The stream lasts as long as the token that opened it: a revoked or
    // expired session must not keep receiving balances. The client
    // reconnects with a fresh token.
    const std::int64_t token_left_ms =
        std::max<std::int64_t>(0, session->expires_at_seconds - deps_.clock.now_seconds()) * 1000;
    stream.ends_at_ms = monotonic_ms() + token_left_ms;
    stream.next_event = [hub = &deps_.hub, sent]() -> std::optional<std::string> {
        // The hub may hold a change the first read already showed (the read
        // itself may have created the period): send only what is newer.
        auto newest = hub->newest(sent->subscription->user_id());
        if (!newest || newest->seq <= sent->seq) return std::nullopt;
        sent->seq = newest->seq;
        return sse_event(newest->snapshot, newest->seq);
    };
    response.set_header("Cache-Control", "no-store");
    response.set_header("X-Accel-Buffering", "no");
    response.set_chunked_content_provider(
        "text/event-stream",
        [first_event = sse_event(user_snapshot(render_snapshot(first)), first_seq), stream = std::move(stream)](std::size_t, httplib::DataSink& sink) {
            if (!sink.write(first_event.data(), first_event.size())) return false;
            // From here the connection loop writes the stream's events: a
            // stream holds no worker. Returning false ends httplib's part.
            hand_over_event_stream(stream);
            return false;
        });
}

void Api::refuse_stream(Response& response, live::StreamRefusal refusal) {
    switch (refusal) {
        case live::StreamRefusal::shutting_down:
            reply_error(response, 503, "shutting_down", "the server is shutting down");
            break;
        case live::StreamRefusal::user_streams_exhausted:
            reply_error(response, 429, "too_many_streams", "this user has the most live streams the server allows");
            break;
        case live::StreamRefusal::streams_exhausted:
            reply_error(response, 429, "too_many_streams", "the server has the most live streams it allows");
            break;
    }
    response.set_header("Retry-After", "5");
}

void Api::my_events(const Request& request, Response& response) {
    auto user = require_user(request, response);
    if (!user) return;
    int limit = 50;
    if (request.has_param("limit")) {
        const std::string text = request.get_param_value("limit");
        const bool digits = !text.empty() && text.size() <= 4 && std::all_of(text.begin(), text.end(), ::isdigit);
        limit = digits ? std::stoi(text) : 0;
        if (limit < 1 || limit > options_.events_page_max) {
            reply_error(response, 400, "invalid_value", "limit must be 1-" + std::to_string(options_.events_page_max));
            return;
        }
    }
    std::int64_t before = 0;
    if (request.has_param("cursor")) {
        auto decoded = base64url_decode(request.get_param_value("cursor"));
        const bool digits = decoded && !decoded->empty() && decoded->size() <= 18 &&
                            std::all_of(decoded->begin(), decoded->end(), ::isdigit);
        if (!digits) {
            reply_error(response, 400, "invalid_cursor", "cursor is not one this server issued");
            return;
        }
        before = std::stoll(*decoded);
    }
    auto page = deps_.ledger.events(*user, before, limit);
    if (!page) {
        reply(response, ledger::LedgerReply::of_kind(ledger::ReplyKind::unavailable));
        return;
    }
    Json events = Json::array();
    for (const auto& row : page->events) events.push_back(ledger::event_object(row));
    Json body = {{"events", std::move(events)}, {"next_cursor", nullptr}};
    if (page->next_before) body["next_cursor"] = base64url_encode(std::to_string(*page->next_before));
    response.set_content(body.dump(), json_type);
}

void Api::my_summary(const Request& request, Response& response) {
    auto user = require_user(request, response);
    if (!user) return;
    const std::string by = request.has_param("group_by") ? request.get_param_value("group_by") : "day";
    storage::SummaryGrouping grouping = storage::SummaryGrouping::day;
    if (by == "model") {
        grouping = storage::SummaryGrouping::model;
    } else if (by == "operation") {
        grouping = storage::SummaryGrouping::operation;
    } else if (by != "day") {
        reply_error(response, 400, "invalid_value", "group_by must be day, model or operation");
        return;
    }
    auto summary = deps_.ledger.summary(*user, grouping);
    if (!summary) {
        reply(response, ledger::LedgerReply::of_kind(ledger::ReplyKind::unavailable));
        return;
    }
    Json groups = Json::array();
    for (const auto& total : summary->totals) {
        groups.push_back({{"key", total.group},
                          {"events", total.events},
                          {"raw_tokens", total.raw_tokens},
                          {"charged_tokens", total.charged_tokens},
                          {"avatars", total.avatars}});
    }
    const Json period = {{"start", format_rfc3339(summary->claims.period_start)},
                         {"end", format_rfc3339(summary->claims.period_end)}};
    response.set_content(Json{{"group_by", by}, {"period", period}, {"groups", std::move(groups)}}.dump(), json_type);
}

void Api::my_statement(const Request& request, Response& response) {
    auto user = require_user(request, response);
    if (!user) return;
    // CSV when asked for by ?format=csv, or by an Accept that names text/csv
    // (and no ?format); JSON otherwise.
    bool csv = false;
    if (request.has_param("format")) {
        const std::string format = request.get_param_value("format");
        if (format != "json" && format != "csv") {
            reply_error(response, 400, "invalid_value", "format must be json or csv");
            return;
        }
        csv = format == "csv";
    } else {
        csv = header(request, "Accept").find("text/csv") != std::string_view::npos;
    }
    const std::string period_text = request.has_param("period") ? request.get_param_value("period") : "current";
    auto period = parse_statement_period(period_text);
    if (!period) {
        reply_error(response, 400, period.error().code, period.error().message);
        return;
    }
    const ledger::StatementReply statement = ledger::read_statement(deps_.ledger, *user, *period);
    switch (statement.outcome) {
        case ledger::StatementOutcome::done: break;
        case ledger::StatementOutcome::not_found:
            reply_error(response, 404, "period_not_found",
                        "you have no period starting at " + json_input::utf8_prefix(period_text, 64));
            return;
        case ledger::StatementOutcome::unavailable:
            reply(response, ledger::LedgerReply::of_kind(ledger::ReplyKind::unavailable));
            return;
    }
    const std::string date = format_rfc3339(statement.statement.last.period_start).substr(0, 10);
    response.set_header("Cache-Control", "no-store");
    response.set_header("Content-Disposition",
                        "attachment; filename=\"tokenmeter-statement-" + date + (csv ? ".csv" : ".json") + "\"");
    if (csv) {
        response.set_content(ledger::statement_csv(statement.statement), "text/csv; charset=utf-8");
    } else {
        response.set_content(ledger::statement_json(statement.statement, options_.jwks_json), json_type);
    }
}

void Api::user_usage(const Request& request, Response& response) {
    if (!require_service(request, response)) return;
    const std::string user_id = request.matches[1];
    if (!is_valid_user_id(user_id)) {
        reply_error(response, 400, "invalid_value", "not a user id");
        return;
    }
    reply(response, deps_.ledger.snapshot(user_id));
}

}  // namespace tokenmeter::http
