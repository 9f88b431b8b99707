// The price book the server prices with (DESIGN.md §3): read by every request
// thread and the ledger writer, replaced whole when the operator reloads the
// catalog file (SIGHUP). A reader keeps the book it took for as long as it
// uses it, so a reload never changes prices under a decision in progress.
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include "clock.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokenmeter/error.hpp"

namespace tokenmeter::ledger {

// Refuses a book none of whose versions has started at `now` (its first is
// dated later): the server would have no prices of the day to charge with.
std::optional<Error> refuse_unstarted(const PriceBook& book, std::int64_t now);

class LivePriceBook {
public:
    LivePriceBook(PriceBook book, const Clock& clock);

    std::shared_ptr<const PriceBook> book() const;
    // The version in force now, kept alive with its book.
    std::shared_ptr<const Catalog> catalog() const;
    // The version in force now as GET /v1/catalog serves it, naming the next.
    std::string catalog_json() const;

    // Takes `book` for everything priced from now on. Refused (and nothing
    // changes) when none of its versions has started yet, or when it would
    // change a version that has already started:
    // receipts and charges name versions, so a started version's prices are
    // history; new prices are a new version.
    std::optional<Error> replace(PriceBook book);

private:
    const Clock& clock_;
    mutable std::mutex mutex_;
    std::shared_ptr<const PriceBook> book_;
};

}  // namespace tokenmeter::ledger
