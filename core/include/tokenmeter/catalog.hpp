// The catalog: operations, models and plans, one JSON document with a version;
// and the price book: the catalog's versions, each in force from its
// `effective_from` until the next one starts (DESIGN.md §3).
//
// Every number the pricing uses is configuration (DESIGN.md §3); this module
// parses and validates the document. What an operation costs is pricing.hpp's
// (price, apply_multiplier, Charge), included here for the catalog's users.
//
// Invariants of a parsed Catalog: ids are unique and well-formed; every model
// names a known tokenizer and only known operations; multipliers are reduced
// positive rationals with terms <= limits::multiplier_term_max, and so are
// token class weights (cached_input may also be 0); the plans
// `free` and `pro` exist (the subscription rules of §9 map onto them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/pricing.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

// The catalog's numbers for one operation the core prices.
struct Operation {
    OperationKind kind = OperationKind::chat;
    std::int64_t tokens_flat = 0;  // avatar only
    std::int64_t avatars = 0;      // avatar only
};

// The tokenizers a model may name. `estimate` is for models without a public
// tokenizer (Claude): counts are approximate and flagged exact=false.
enum class TokenizerKind : std::uint8_t { o200k_base = 0, cl100k_base = 1, estimate = 2 };

std::string_view to_string(TokenizerKind kind);
std::optional<TokenizerKind> tokenizer_kind_from_string(std::string_view id);

struct Model {
    std::string id;
    Multiplier multiplier;
    TokenWeights weights;  // all 1 unless the catalog says otherwise
    TokenizerKind tokenizer = TokenizerKind::o200k_base;
    std::vector<OperationKind> operations;

    bool exact() const { return tokenizer != TokenizerKind::estimate; }
    bool supports(OperationKind kind) const;
};

struct Plan {
    std::string id;
    std::int64_t tokens_per_period = 0;
    std::int64_t avatars_per_period = 0;
    // The payment provider's variants that sell this plan (monthly, yearly, …).
    std::vector<std::string> variant_ids;
};

// A credit pack: a one-time purchase of tokens that outlive the period and
// are spent after the plan's allowance (DESIGN.md §3).
struct Pack {
    std::string id;
    std::string variant_id;
    std::int64_t tokens = 0;
};

struct Catalog {
    std::string version;
    // Unix seconds; absent: in force from the beginning (a catalog in the
    // shape it had before the price book was dated).
    std::optional<std::int64_t> effective_from;
    std::vector<Operation> operations;
    std::vector<Model> models;
    std::vector<Plan> plans;
    std::vector<Pack> packs;

    const Operation* find_operation(OperationKind kind) const;
    const Model* find_model(std::string_view id) const;
    const Plan* find_plan(std::string_view id) const;
    const Pack* find_pack(std::string_view id) const;
    // What a provider variant sells: a plan or a pack (a variant names at most one).
    const Plan* plan_of_variant(std::string_view variant_id) const;
    const Pack* pack_of_variant(std::string_view variant_id) const;
};

// Whether moving from plan `from` to plan `to` gives more: a larger token
// allowance, or the same with more avatars. An upgrade applies at once, any
// other switch between paid plans from the next period (DESIGN.md §9).
bool is_upgrade(const Plan& from, const Plan& to);

// Parses and validates a catalog document. Errors name the offending field:
// catalog_malformed, catalog_unknown_field, catalog_missing_field,
// catalog_invalid_value, catalog_duplicate_id, catalog_unknown_operation,
// catalog_too_large. A variant id may sell one plan or one pack, never two,
// and never the free plan.
Result<Catalog, Error> parse_catalog(std::string_view json_text);

// The dated price book: catalog versions in the order they take effect. A
// reservation is priced, and later settled, by the version in force when it
// was made; a version that starts later applies to what is authorized or
// recorded from then on, so history is never re-priced.
//
// Invariants of a parsed PriceBook: at least one version; version ids are
// unique; every version but the first has effective_from, strictly
// ascending; the first may have none (in force from the beginning).
struct PriceBook {
    std::vector<Catalog> versions;

    // The newest version whose effective_from is at or before `now`; the
    // first version when none has started yet (a book always prices).
    const Catalog& in_force(std::int64_t now) const;
    // The version that starts next after `now`, if the book has one.
    const Catalog* next_after(std::int64_t now) const;
    const Catalog* find_version(std::string_view version) const;
};

// A price book of one version.
PriceBook price_book_of(Catalog catalog);

// Parses a price book file: either one catalog document (today's shape,
// optionally with effective_from) or {"versions": [catalog, …]}. Errors as
// parse_catalog, naming versions[i], plus catalog_duplicate_id for a version
// given twice and catalog_invalid_value for versions out of date order.
Result<PriceBook, Error> parse_price_book(std::string_view json_text);

// The seed's numbers (DESIGN.md §3), as a JSON document and parsed.
std::string_view default_catalog_json();
const Catalog& default_catalog();
const PriceBook& default_price_book();

// The catalog as served at GET /v1/catalog (also accepted by parse_catalog,
// apart from the derived `exact` field of each model): with `next`, the
// version that follows it is named with its start
// ({"next":{"version","effective_from"}}).
std::string catalog_to_json(const Catalog& catalog, const Catalog* next = nullptr);

}  // namespace tokenmeter
