#include "ledger/live_price_book.hpp"

#include "tokenmeter/assert.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter::ledger {

std::optional<Error> refuse_unstarted(const PriceBook& book, std::int64_t now) {
    const Catalog& first = book.versions.front();
    if (!first.effective_from || *first.effective_from <= now) return std::nullopt;
    return make_error("catalog_not_started", "no version is in force yet: the first, \"" + first.version +
                                                 "\", starts at " + format_rfc3339(*first.effective_from) +
                                                 " (give the prices of today a version without effective_from, or "
                                                 "one dated in the past)");
}

LivePriceBook::LivePriceBook(PriceBook book, const Clock& clock)
    : clock_(clock), book_(std::make_shared<const PriceBook>(std::move(book))) {
    TM_ASSERT(!book_->versions.empty());
}

std::shared_ptr<const PriceBook> LivePriceBook::book() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return book_;
}

std::shared_ptr<const Catalog> LivePriceBook::catalog() const {
    auto held = book();
    const Catalog& current = held->in_force(clock_.now_seconds());
    return std::shared_ptr<const Catalog>(std::move(held), &current);
}

std::string LivePriceBook::catalog_json() const {
    auto held = book();
    const std::int64_t now = clock_.now_seconds();
    return catalog_to_json(held->in_force(now), held->next_after(now));
}

std::optional<Error> LivePriceBook::replace(PriceBook book) {
    TM_ASSERT(!book.versions.empty());
    auto next = std::make_shared<const PriceBook>(std::move(book));
    std::lock_guard<std::mutex> guard(mutex_);
    const std::int64_t now = clock_.now_seconds();
    if (auto unstarted = refuse_unstarted(*next, now)) return unstarted;
    for (const Catalog& old : book_->versions) {
        if (old.effective_from && *old.effective_from > now) continue;  // not started: may still change
        const Catalog* same = next->find_version(old.version);
        if (same == nullptr) continue;
        if (catalog_to_json(*same) != catalog_to_json(old)) {
            return make_error("catalog_version_changed",
                              "version \"" + old.version +
                                  "\" has already started and its prices are history; give the new prices a new "
                                  "version with its own effective_from");
        }
    }
    book_ = std::move(next);
    return std::nullopt;
}

}  // namespace tokenmeter::ledger
