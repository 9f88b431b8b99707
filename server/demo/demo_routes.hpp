// Routes that exist only under `tokenmeter serve --demo`: the demo app's
// stand-in for an app backend. The demo's chat needs none (it streams
// through the gateway, POST /v1/chat/completions, to the local OpenAI
// stand-in); avatars and document embeddings are metered here the way an
// outside backend would: through POST /v1/usage/{authorize,commit} with the
// demo service key, over HTTP.
//
//   GET  /demo/session  -> {"user_id","access_token"}  a dev user's JWT (HS256, the demo secret)
//   POST /demo/avatar   (user bearer) -> {"usage"}
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "clock.hpp"
#include "http/api.hpp"
#include "http/callers.hpp"
#include "ledger/live_price_book.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokens/token_counter.hpp"

namespace tokenmeter::demo {

struct DemoSettings {
    std::string user_id = "dev-user";
    std::string jwt_secret;               // signs the dev user's token
    std::string service_key;              // the "backend" meters with it
    std::int64_t token_ttl_seconds = 12 * 3600;
};

struct DemoDependencies {
    http::Callers& callers;
    tokens::TokenCounter& tokens;
    const ledger::LivePriceBook& prices;
    const Clock& clock;
    std::function<int()> port;            // this server's own port, known after bind
};

std::shared_ptr<http::RouteSet> make_demo_routes(DemoDependencies dependencies, DemoSettings settings);

}  // namespace tokenmeter::demo
