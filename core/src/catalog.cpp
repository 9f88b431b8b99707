#include "tokenmeter/catalog.hpp"

#include <algorithm>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter {

namespace {

using json_input::Json;

constexpr std::string_view default_catalog_text = R"({
  "version": "2026-11-01",
  "operations": [
    {"id": "chat"},
    {"id": "embedding"},
    {"id": "avatar", "tokens_flat": 10000, "avatars": 1}
  ],
  "models": [
    {"id": "gpt-4o-mini", "multiplier": "1", "tokenizer": "o200k_base", "operations": ["chat"]},
    {"id": "gpt-4o", "multiplier": "3", "tokenizer": "o200k_base", "operations": ["chat"]},
    {"id": "claude-3-5-sonnet", "multiplier": "2", "tokenizer": "estimate", "operations": ["chat"]},
    {"id": "claude-3-7-sonnet", "multiplier": "5/2", "tokenizer": "estimate", "operations": ["chat"]},
    {"id": "text-embedding-3-small", "multiplier": "1", "tokenizer": "cl100k_base", "operations": ["embedding"]}
  ],
  "plans": [
    {"id": "free", "tokens_per_period": 250000, "avatars_per_period": 5},
    {"id": "pro", "tokens_per_period": 10000000, "avatars_per_period": 50}
  ]
})";

Error catalog_error(std::string code, std::string message) {
    return make_error("catalog_" + code, std::move(message));
}

Error in_catalog(Error error) {
    return catalog_error(error.code, std::move(error.message));
}

// Ids are identifiers, not free text: they end up in URLs, metrics labels and
// SQL rows, so they are kept to a conservative alphabet.
bool is_valid_id(std::string_view id) {
    if (id.empty() || id.size() > limits::id_bytes_max) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    });
}

Result<std::string, Error> id_member(const Json& object, std::string_view where) {
    auto id = json_input::string_member(object, "id", where);
    if (!id) return unexpected(in_catalog(id.error()));
    if (!is_valid_id(*id)) {
        return unexpected(catalog_error(
            "invalid_value", json_input::path(where, "id") +
                                 " must be 1-64 characters of a-z, 0-9, '-', '_' or '.'"));
    }
    return std::move(id).value();
}

Result<Operation, Error> parse_operation(const Json& object, std::string_view where) {
    if (!object.is_object()) return unexpected(catalog_error("invalid_value", std::string(where) + " must be an object"));
    if (auto unknown = json_input::refuse_unknown_fields(object, {"id", "tokens_flat", "avatars"}, where)) {
        return unexpected(in_catalog(*unknown));
    }
    auto id = json_input::string_member(object, "id", where);
    if (!id) return unexpected(in_catalog(id.error()));
    auto kind = operation_kind_from_string(*id);
    if (!kind) {
        return unexpected(catalog_error("unknown_operation", json_input::path(where, "id") + " \"" + *id +
                                                                 "\" is not an operation (chat, embedding, avatar)"));
    }
    Operation operation;
    operation.kind = *kind;
    if (*kind != OperationKind::avatar) {
        if (object.contains("tokens_flat") || object.contains("avatars")) {
            return unexpected(catalog_error("invalid_value", std::string(where) +
                                                                 ": tokens_flat and avatars apply to avatar only"));
        }
        return operation;
    }
    auto tokens = json_input::count_member(object, "tokens_flat", where, limits::count_max);
    if (!tokens) return unexpected(in_catalog(tokens.error()));
    auto avatars = json_input::count_member(object, "avatars", where, limits::count_max);
    if (!avatars) return unexpected(in_catalog(avatars.error()));
    if (*avatars == 0) {
        return unexpected(catalog_error("invalid_value", json_input::path(where, "avatars") + " must be at least 1"));
    }
    operation.tokens_flat = *tokens;
    operation.avatars = *avatars;
    return operation;
}

// A rational as the catalog writes one: a string ("5/2", "2.5", "3") or a
// whole number; floating-point numbers are refused, they would not stay
// exact. `zero_allowed` admits "0" (or 0) as well.
Result<Multiplier, Error> rational_value(const Json& value, const std::string& field, bool zero_allowed) {
    if (zero_allowed && ((value.is_number_unsigned() && value.get<std::uint64_t>() == 0) ||
                         (value.is_string() && value.get<std::string>() == "0"))) {
        return Multiplier{0, 1};
    }
    if (value.is_number_unsigned()) {
        auto parsed = parse_multiplier(std::to_string(value.get<std::uint64_t>()));
        if (!parsed) return unexpected(catalog_error("invalid_value", field + ": " + parsed.error().message));
        return parsed;
    }
    if (value.is_number_float()) {
        return unexpected(catalog_error("invalid_value", field +
                                                             " is a floating-point number; write it as a string "
                                                             "such as \"5/2\" or \"2.5\" so it stays exact"));
    }
    if (!value.is_string()) {
        return unexpected(catalog_error("invalid_value", field + " must be a positive rational such as \"5/2\""));
    }
    auto parsed = parse_multiplier(value.get<std::string>());
    if (!parsed) return unexpected(catalog_error("invalid_value", field + ": " + parsed.error().message));
    return parsed;
}

Result<Multiplier, Error> multiplier_member(const Json& object, std::string_view where) {
    const std::string field = json_input::path(where, "multiplier");
    auto found = object.find("multiplier");
    if (found == object.end()) return unexpected(catalog_error("missing_field", "missing field " + field));
    return rational_value(*found, field, false);
}

// A model's token class weights, each optional and 1 when absent (so a
// catalog without weights prices as before). Only cached input may weigh 0:
// a provider may not bill cache reads, while a free input or output token
// would make a charge that no count can limit.
Result<TokenWeights, Error> weights_member(const Json& object, std::string_view where) {
    TokenWeights weights;
    auto found = object.find("weights");
    if (found == object.end()) return weights;
    const std::string key = json_input::path(where, "weights");
    if (!found->is_object()) {
        return unexpected(catalog_error("invalid_value", key + " must be an object of input, cached_input, output, reasoning"));
    }
    if (auto unknown = json_input::refuse_unknown_fields(*found, {"input", "cached_input", "output", "reasoning"}, key)) {
        return unexpected(in_catalog(*unknown));
    }
    for (auto [name, target] : {std::pair<const char*, Multiplier*>{"input", &weights.input},
                                {"cached_input", &weights.cached_input},
                                {"output", &weights.output},
                                {"reasoning", &weights.reasoning}}) {
        auto weight = found->find(name);
        if (weight == found->end()) continue;
        const bool zero_allowed = std::string_view(name) == "cached_input";
        auto parsed = rational_value(*weight, json_input::path(key, name), zero_allowed);
        if (!parsed) return unexpected(parsed.error());
        *target = *parsed;
    }
    return weights;
}

Result<std::vector<OperationKind>, Error> model_operations(const Json& object, std::string_view where) {
    const std::string field = json_input::path(where, "operations");
    auto found = object.find("operations");
    if (found == object.end()) return unexpected(catalog_error("missing_field", "missing field " + field));
    if (!found->is_array() || found->empty()) {
        return unexpected(catalog_error("invalid_value", field + " must be a non-empty array of operation ids"));
    }
    std::vector<OperationKind> kinds;
    for (const Json& item : *found) {
        if (!item.is_string()) return unexpected(catalog_error("invalid_value", field + " must hold strings"));
        auto kind = operation_kind_from_string(item.get<std::string>());
        if (!kind) {
            return unexpected(catalog_error("unknown_operation",
                                            field + " names \"" + item.get<std::string>() + "\", not an operation"));
        }
        if (std::find(kinds.begin(), kinds.end(), *kind) != kinds.end()) {
            return unexpected(catalog_error("duplicate_id", field + " lists \"" + item.get<std::string>() + "\" twice"));
        }
        kinds.push_back(*kind);
    }
    return kinds;
}

Result<Model, Error> parse_model(const Json& object, std::string_view where) {
    if (!object.is_object()) return unexpected(catalog_error("invalid_value", std::string(where) + " must be an object"));
    if (auto unknown = json_input::refuse_unknown_fields(object, {"id", "multiplier", "weights", "tokenizer", "operations", "exact"},
                                                         where)) {
        return unexpected(in_catalog(*unknown));
    }
    Model model;
    auto id = id_member(object, where);
    if (!id) return unexpected(id.error());
    model.id = std::move(id).value();
    auto multiplier = multiplier_member(object, where);
    if (!multiplier) return unexpected(multiplier.error());
    model.multiplier = *multiplier;
    auto weights = weights_member(object, where);
    if (!weights) return unexpected(weights.error());
    model.weights = *weights;
    auto tokenizer = json_input::string_member(object, "tokenizer", where);
    if (!tokenizer) return unexpected(in_catalog(tokenizer.error()));
    auto kind = tokenizer_kind_from_string(*tokenizer);
    if (!kind) {
        return unexpected(catalog_error("invalid_value", json_input::path(where, "tokenizer") + " \"" + *tokenizer +
                                                             "\" is not one of o200k_base, cl100k_base, estimate"));
    }
    model.tokenizer = *kind;
    auto operations = model_operations(object, where);
    if (!operations) return unexpected(operations.error());
    model.operations = std::move(operations).value();
    // `exact` is derived from the tokenizer; it is accepted (catalog_to_json
    // writes it) only when it agrees, so a document never says two things.
    if (auto exact = object.find("exact"); exact != object.end()) {
        if (!exact->is_boolean() || exact->get<bool>() != model.exact()) {
            return unexpected(catalog_error("invalid_value", json_input::path(where, "exact") +
                                                                 " disagrees with the tokenizer"));
        }
    }
    return model;
}

// Provider variant ids: LemonSqueezy's are numbers, sent as strings; kept to
// the id alphabet plus capitals, so they are safe in URLs and logs.
bool is_valid_variant_id(std::string_view id) {
    if (id.empty() || id.size() > limits::id_bytes_max) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

Result<std::string, Error> variant_id_value(const Json& value, const std::string& where) {
    if (!value.is_string() || !is_valid_variant_id(value.get<std::string>())) {
        return unexpected(catalog_error("invalid_value", where + " must be a variant id: 1-64 characters of A-Z, a-z, 0-9, '-' or '_'"));
    }
    return value.get<std::string>();
}

Result<std::vector<std::string>, Error> variant_ids_member(const Json& object, std::string_view where) {
    std::vector<std::string> ids;
    auto found = object.find("variant_ids");
    if (found == object.end()) return ids;
    const std::string key = json_input::path(where, "variant_ids");
    if (!found->is_array() || found->size() > limits::catalog_plans_max) {
        return unexpected(catalog_error("invalid_value", key + " must be an array of at most " +
                                                             std::to_string(limits::catalog_plans_max) + " variant ids"));
    }
    for (std::size_t i = 0; i < found->size(); ++i) {
        auto id = variant_id_value((*found)[i], key + "[" + std::to_string(i) + "]");
        if (!id) return unexpected(id.error());
        ids.push_back(std::move(id).value());
    }
    return ids;
}

Result<Pack, Error> parse_pack(const Json& object, std::string_view where) {
    if (!object.is_object()) return unexpected(catalog_error("invalid_value", std::string(where) + " must be an object"));
    if (auto unknown = json_input::refuse_unknown_fields(object, {"id", "variant_id", "tokens"}, where)) {
        return unexpected(in_catalog(*unknown));
    }
    Pack pack;
    auto id = id_member(object, where);
    if (!id) return unexpected(id.error());
    pack.id = std::move(id).value();
    auto variant = object.find("variant_id");
    if (variant == object.end()) return unexpected(catalog_error("missing_field", "missing field " + json_input::path(where, "variant_id")));
    auto variant_id = variant_id_value(*variant, json_input::path(where, "variant_id"));
    if (!variant_id) return unexpected(variant_id.error());
    pack.variant_id = std::move(variant_id).value();
    auto tokens = json_input::count_member(object, "tokens", where, limits::count_max);
    if (!tokens) return unexpected(in_catalog(tokens.error()));
    if (*tokens == 0) return unexpected(catalog_error("invalid_value", json_input::path(where, "tokens") + " must be positive"));
    pack.tokens = *tokens;
    return pack;
}

Result<Plan, Error> parse_plan(const Json& object, std::string_view where) {
    if (!object.is_object()) return unexpected(catalog_error("invalid_value", std::string(where) + " must be an object"));
    if (auto unknown = json_input::refuse_unknown_fields(object, {"id", "tokens_per_period", "avatars_per_period", "variant_ids"}, where)) {
        return unexpected(in_catalog(*unknown));
    }
    Plan plan;
    auto id = id_member(object, where);
    if (!id) return unexpected(id.error());
    plan.id = std::move(id).value();
    auto tokens = json_input::count_member(object, "tokens_per_period", where, limits::count_max);
    if (!tokens) return unexpected(in_catalog(tokens.error()));
    auto avatars = json_input::count_member(object, "avatars_per_period", where, limits::count_max);
    if (!avatars) return unexpected(in_catalog(avatars.error()));
    plan.tokens_per_period = *tokens;
    plan.avatars_per_period = *avatars;
    auto variants = variant_ids_member(object, where);
    if (!variants) return unexpected(variants.error());
    plan.variant_ids = std::move(variants).value();
    return plan;
}

// Parses the array `key` of `document` element by element with `parse_one`.
// An optional list is empty when absent.
template <typename T, typename Parse>
Result<std::vector<T>, Error> parse_list(const Json& document, std::string_view key, std::size_t max, Parse parse_one,
                                         bool optional = false) {
    auto found = document.find(key);
    if (found == document.end() && optional) return std::vector<T>{};
    if (found == document.end()) return unexpected(catalog_error("missing_field", "missing field catalog." + std::string(key)));
    if (!found->is_array()) return unexpected(catalog_error("invalid_value", "catalog." + std::string(key) + " must be an array"));
    if (found->size() > max) {
        return unexpected(catalog_error("invalid_value", "catalog." + std::string(key) + " has more than " +
                                                             std::to_string(max) + " entries"));
    }
    std::vector<T> items;
    items.reserve(found->size());
    for (std::size_t i = 0; i < found->size(); ++i) {
        auto item = parse_one((*found)[i], "catalog." + std::string(key) + "[" + std::to_string(i) + "]");
        if (!item) return unexpected(item.error());
        items.push_back(std::move(item).value());
    }
    return items;
}

template <typename T, typename Key>
std::optional<Error> refuse_duplicates(const std::vector<T>& items, std::string_view what, Key key_of) {
    for (std::size_t i = 0; i < items.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            if (key_of(items[i]) == key_of(items[j])) {
                return catalog_error("duplicate_id",
                                     std::string(what) + " \"" + std::string(key_of(items[i])) + "\" appears twice");
            }
        }
    }
    return std::nullopt;
}

std::optional<Error> check_references(const Catalog& catalog) {
    if (auto e = refuse_duplicates(catalog.operations, "operation", [](const Operation& o) { return to_string(o.kind); })) return e;
    if (auto e = refuse_duplicates(catalog.models, "model", [](const Model& m) { return std::string_view(m.id); })) return e;
    if (auto e = refuse_duplicates(catalog.plans, "plan", [](const Plan& p) { return std::string_view(p.id); })) return e;
    for (const Model& model : catalog.models) {
        for (OperationKind kind : model.operations) {
            if (catalog.find_operation(kind) == nullptr) {
                return catalog_error("unknown_operation", "model \"" + model.id + "\" offers " +
                                                              std::string(to_string(kind)) +
                                                              ", which catalog.operations does not define");
            }
        }
    }
    if (auto e = refuse_duplicates(catalog.packs, "pack", [](const Pack& p) { return std::string_view(p.id); })) return e;
    if (const Plan* free = catalog.find_plan("free"); free != nullptr && !free->variant_ids.empty()) {
        return catalog_error("invalid_value", "the free plan is what no subscription gives: it names no variant_ids");
    }
    std::vector<std::string> variants;
    for (const Plan& plan : catalog.plans) variants.insert(variants.end(), plan.variant_ids.begin(), plan.variant_ids.end());
    for (const Pack& pack : catalog.packs) variants.push_back(pack.variant_id);
    if (auto e = refuse_duplicates(variants, "variant", [](const std::string& v) { return std::string_view(v); })) return e;
    for (std::string_view required : {"free", "pro"}) {
        if (catalog.find_plan(required) == nullptr) {
            return catalog_error("missing_field", "catalog.plans has no \"" + std::string(required) +
                                                      "\" plan (subscriptions map onto free and pro)");
        }
    }
    return std::nullopt;
}

}  // namespace

std::string_view to_string(TokenizerKind kind) {
    switch (kind) {
        case TokenizerKind::o200k_base: return "o200k_base";
        case TokenizerKind::cl100k_base: return "cl100k_base";
        case TokenizerKind::estimate: return "estimate";
    }
    TM_ASSERT(false);
}

std::optional<TokenizerKind> tokenizer_kind_from_string(std::string_view id) {
    if (id == "o200k_base") return TokenizerKind::o200k_base;
    if (id == "cl100k_base") return TokenizerKind::cl100k_base;
    if (id == "estimate") return TokenizerKind::estimate;
    return std::nullopt;
}

bool Model::supports(OperationKind kind) const {
    return std::find(operations.begin(), operations.end(), kind) != operations.end();
}

const Operation* Catalog::find_operation(OperationKind kind) const {
    for (const Operation& operation : operations) {
        if (operation.kind == kind) return &operation;
    }
    return nullptr;
}

const Model* Catalog::find_model(std::string_view id) const {
    for (const Model& model : models) {
        if (model.id == id) return &model;
    }
    return nullptr;
}

const Plan* Catalog::find_plan(std::string_view id) const {
    for (const Plan& plan : plans) {
        if (plan.id == id) return &plan;
    }
    return nullptr;
}

const Pack* Catalog::find_pack(std::string_view id) const {
    for (const Pack& pack : packs) {
        if (pack.id == id) return &pack;
    }
    return nullptr;
}

const Plan* Catalog::plan_of_variant(std::string_view variant_id) const {
    for (const Plan& plan : plans) {
        if (std::find(plan.variant_ids.begin(), plan.variant_ids.end(), variant_id) != plan.variant_ids.end()) return &plan;
    }
    return nullptr;
}

const Pack* Catalog::pack_of_variant(std::string_view variant_id) const {
    for (const Pack& pack : packs) {
        if (pack.variant_id == variant_id) return &pack;
    }
    return nullptr;
}

bool is_upgrade(const Plan& from, const Plan& to) {
    if (to.tokens_per_period != from.tokens_per_period) return to.tokens_per_period > from.tokens_per_period;
    return to.avatars_per_period > from.avatars_per_period;
}

namespace {

// An instant in a catalog: RFC 3339 UTC, as everywhere else in the API.
Result<std::int64_t, Error> instant_member(const Json& object, std::string_view key, std::string_view where) {
    auto text = json_input::string_member(object, key, where);
    if (!text) return unexpected(in_catalog(text.error()));
    auto instant = parse_rfc3339(*text);
    if (!instant) {
        return unexpected(catalog_error("invalid_value", json_input::path(where, key) +
                                                             " must be an RFC 3339 timestamp (2027-01-01T00:00:00Z)"));
    }
    return *instant;
}

// The `next` a served catalog carries is information for its readers (when
// the prices change); it is checked for shape and not kept.
std::optional<Error> check_next(const Json& document) {
    auto found = document.find("next");
    if (found == document.end()) return std::nullopt;
    if (!found->is_object()) return catalog_error("invalid_value", "catalog.next must be an object");
    if (auto unknown = json_input::refuse_unknown_fields(*found, {"version", "effective_from"}, "catalog.next")) {
        return in_catalog(*unknown);
    }
    auto version = json_input::string_member(*found, "version", "catalog.next");
    if (!version) return in_catalog(version.error());
    auto starts = instant_member(*found, "effective_from", "catalog.next");
    if (!starts) return starts.error();
    return std::nullopt;
}

Result<Catalog, Error> catalog_from(const Json& document) {
    if (!document.is_object()) return unexpected(catalog_error("malformed", "the catalog must be a JSON object"));
    if (auto unknown = json_input::refuse_unknown_fields(
            document, {"version", "effective_from", "next", "operations", "models", "plans", "packs"}, "catalog")) {
        return unexpected(in_catalog(*unknown));
    }
    Catalog catalog;
    auto version = json_input::string_member(document, "version", "catalog");
    if (!version) return unexpected(in_catalog(version.error()));
    if (!is_valid_id(*version)) {
        return unexpected(catalog_error("invalid_value", "catalog.version must be 1-64 characters of a-z, 0-9, '-', '_' or '.'"));
    }
    catalog.version = std::move(version).value();
    if (document.contains("effective_from")) {
        auto starts = instant_member(document, "effective_from", "catalog");
        if (!starts) return unexpected(starts.error());
        catalog.effective_from = *starts;
    }
    if (auto error = check_next(document)) return unexpected(*error);
    auto operations = parse_list<Operation>(document, "operations", limits::catalog_operations_max, parse_operation);
    if (!operations) return unexpected(operations.error());
    catalog.operations = std::move(operations).value();
    auto models = parse_list<Model>(document, "models", limits::catalog_models_max, parse_model);
    if (!models) return unexpected(models.error());
    catalog.models = std::move(models).value();
    auto plans = parse_list<Plan>(document, "plans", limits::catalog_plans_max, parse_plan);
    if (!plans) return unexpected(plans.error());
    catalog.plans = std::move(plans).value();
    auto packs = parse_list<Pack>(document, "packs", limits::catalog_plans_max, parse_pack, true);
    if (!packs) return unexpected(packs.error());
    catalog.packs = std::move(packs).value();
    if (auto error = check_references(catalog)) return unexpected(*error);
    return catalog;
}

Result<Json, Error> catalog_document(std::string_view json_text) {
    if (json_text.size() > limits::catalog_bytes_max) {
        return unexpected(catalog_error("too_large", "the catalog is larger than " +
                                                         std::to_string(limits::catalog_bytes_max) + " bytes"));
    }
    auto document = json_input::parse(json_text);
    if (!document) return unexpected(catalog_error("malformed", "the catalog is not valid JSON"));
    if (!document->is_object()) return unexpected(catalog_error("malformed", "the catalog must be a JSON object"));
    return std::move(document).value();
}

// A version's error, named by its place in the book.
Error in_version(std::size_t index, Error error) {
    error.message = "versions[" + std::to_string(index) + "]: " + error.message;
    return error;
}

// The book's order: unique versions, every one after the first dated, and
// each starting strictly after the one before.
std::optional<Error> check_dates(const std::vector<Catalog>& versions) {
    for (std::size_t i = 0; i < versions.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            if (versions[j].version == versions[i].version) {
                return catalog_error("duplicate_id", "versions[" + std::to_string(i) + "]: version \"" +
                                                         versions[i].version + "\" is given twice");
            }
        }
        if (i == 0) continue;
        if (!versions[i].effective_from) {
            return catalog_error("missing_field", "versions[" + std::to_string(i) +
                                                      "]: missing field effective_from (only the first version may "
                                                      "have none)");
        }
        if (versions[i - 1].effective_from && *versions[i].effective_from <= *versions[i - 1].effective_from) {
            return catalog_error("invalid_value", "versions[" + std::to_string(i) +
                                                      "].effective_from must be after versions[" +
                                                      std::to_string(i - 1) + "].effective_from");
        }
    }
    return std::nullopt;
}

}  // namespace

Result<Catalog, Error> parse_catalog(std::string_view json_text) {
    auto document = catalog_document(json_text);
    if (!document) return unexpected(document.error());
    return catalog_from(*document);
}

Result<PriceBook, Error> parse_price_book(std::string_view json_text) {
    auto document = catalog_document(json_text);
    if (!document) return unexpected(document.error());
    if (!document->contains("versions")) {
        auto catalog = catalog_from(*document);
        if (!catalog) return unexpected(catalog.error());
        return price_book_of(std::move(catalog).value());
    }
    if (auto unknown = json_input::refuse_unknown_fields(*document, {"versions"}, "price book")) {
        return unexpected(in_catalog(*unknown));
    }
    const Json& list = (*document)["versions"];
    if (!list.is_array() || list.empty()) {
        return unexpected(catalog_error("invalid_value", "versions must be a non-empty array of catalogs"));
    }
    if (list.size() > limits::price_book_versions_max) {
        return unexpected(catalog_error("invalid_value", "versions has more than " +
                                                             std::to_string(limits::price_book_versions_max) + " entries"));
    }
    PriceBook book;
    for (std::size_t i = 0; i < list.size(); ++i) {
        auto catalog = catalog_from(list[i]);
        if (!catalog) return unexpected(in_version(i, catalog.error()));
        book.versions.push_back(std::move(catalog).value());
    }
    if (auto error = check_dates(book.versions)) return unexpected(*error);
    return book;
}

PriceBook price_book_of(Catalog catalog) {
    PriceBook book;
    book.versions.push_back(std::move(catalog));
    return book;
}

const Catalog& PriceBook::in_force(std::int64_t now) const {
    TM_ASSERT(!versions.empty());
    const Catalog* current = &versions.front();
    for (const Catalog& version : versions) {
        if (version.effective_from && *version.effective_from > now) break;
        current = &version;
    }
    return *current;
}

const Catalog* PriceBook::next_after(std::int64_t now) const {
    for (const Catalog& version : versions) {
        if (version.effective_from && *version.effective_from > now) return &version;
    }
    return nullptr;
}

const Catalog* PriceBook::find_version(std::string_view version) const {
    for (const Catalog& catalog : versions) {
        if (catalog.version == version) return &catalog;
    }
    return nullptr;
}

std::string_view default_catalog_json() { return default_catalog_text; }

const Catalog& default_catalog() {
    static const Catalog catalog = [] {
        auto parsed = parse_catalog(default_catalog_text);
        TM_ASSERT(parsed.has_value());
        return std::move(parsed).value();
    }();
    return catalog;
}

const PriceBook& default_price_book() {
    static const PriceBook book = price_book_of(default_catalog());
    return book;
}

std::string catalog_to_json(const Catalog& catalog, const Catalog* next) {
    Json operations = Json::array();
    for (const Operation& operation : catalog.operations) {
        Json item = {{"id", to_string(operation.kind)}};
        if (operation.kind == OperationKind::avatar) {
            item["tokens_flat"] = operation.tokens_flat;
            item["avatars"] = operation.avatars;
        }
        operations.push_back(std::move(item));
    }
    Json models = Json::array();
    for (const Model& model : catalog.models) {
        Json kinds = Json::array();
        for (OperationKind kind : model.operations) kinds.push_back(to_string(kind));
        Json item = {{"id", model.id},
                     {"multiplier", to_string(model.multiplier)},
                     {"tokenizer", to_string(model.tokenizer)},
                     {"exact", model.exact()},
                     {"operations", std::move(kinds)}};
        // Only when they say something: a catalog without weights is
        // served byte for byte as before token classes.
        if (!model.weights.all_one()) {
            item["weights"] = {{"input", to_string(model.weights.input)},
                               {"cached_input", to_string(model.weights.cached_input)},
                               {"output", to_string(model.weights.output)},
                               {"reasoning", to_string(model.weights.reasoning)}};
        }
        models.push_back(std::move(item));
    }
    Json plans = Json::array();
    for (const Plan& plan : catalog.plans) {
        Json item = {{"id", plan.id},
                     {"tokens_per_period", plan.tokens_per_period},
                     {"avatars_per_period", plan.avatars_per_period}};
        if (!plan.variant_ids.empty()) item["variant_ids"] = plan.variant_ids;
        plans.push_back(std::move(item));
    }
    Json document = {{"version", catalog.version}, {"operations", std::move(operations)},
                     {"models", std::move(models)}, {"plans", std::move(plans)}};
    if (catalog.effective_from) document["effective_from"] = format_rfc3339(*catalog.effective_from);
    if (next != nullptr && next->effective_from) {
        document["next"] = {{"version", next->version}, {"effective_from", format_rfc3339(*next->effective_from)}};
    }
    if (!catalog.packs.empty()) {
        Json packs = Json::array();
        for (const Pack& pack : catalog.packs) {
            packs.push_back({{"id", pack.id}, {"variant_id", pack.variant_id}, {"tokens", pack.tokens}});
        }
        document["packs"] = std::move(packs);
    }
    return document.dump();
}

}  // namespace tokenmeter
