// Ledger replies as the API answers them (DESIGN.md §7): the one place where
// the ledger's typed results and refusal codes become status codes and JSON.
// Rendering is a pure function of the reply, so a replay rebuilt from the
// journal renders the first answer's very bytes.
#pragma once

#include <string>

#include "ledger/replies.hpp"

namespace tokenmeter::http {

struct RenderedReply {
    int status = 200;
    std::string body;
};

struct ReplyStyle {
    std::string upgrade_url = "/v1/me/checkout";  // where a 402 sends the user
};

RenderedReply render_reply(const ledger::LedgerReply& reply, const ReplyStyle& style);

// The snapshot of a reply's receipt (DESIGN §7): its numbers are the receipt's claims.
std::string render_snapshot(const ledger::LedgerReply& reply);

int status_of(RefusalCode code);

}  // namespace tokenmeter::http
