#include "tokenmeter/catalog.hpp"

#include <algorithm>
#include <numeric>

#include "tokenmeter/json_input.hpp"
#include "tokenmeter/limits.hpp"

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

bool all_digits(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Reads an unsigned decimal of at most 18 digits (fits int64 with room).
std::optional<std::int64_t> small_decimal(std::string_view digits) {
    if (!all_digits(digits) || digits.size() > 18) return std::nullopt;
    std::int64_t value = 0;
    for (char c : digits) value = value * 10 + (c - '0');
    return value;
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

Result<Multiplier, Error> multiplier_member(const Json& object, std::string_view where) {
    const std::string field = json_input::path(where, "multiplier");
    auto found = object.find("multiplier");
    if (found == object.end()) return unexpected(catalog_error("missing_field", "missing field " + field));
    if (found->is_number_unsigned()) {
        auto parsed = parse_multiplier(std::to_string(found->get<std::uint64_t>()));
        if (!parsed) return unexpected(catalog_error("invalid_value", field + ": " + parsed.error().message));
        return parsed;
    }
    if (found->is_number_float()) {
        return unexpected(catalog_error("invalid_value", field +
                                                             " is a floating-point number; write it as a string "
                                                             "such as \"5/2\" or \"2.5\" so it stays exact"));
    }
    if (!found->is_string()) {
        return unexpected(catalog_error("invalid_value", field + " must be a positive rational such as \"5/2\""));
    }
    auto parsed = parse_multiplier(found->get<std::string>());
    if (!parsed) return unexpected(catalog_error("invalid_value", field + ": " + parsed.error().message));
    return parsed;
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
    if (auto unknown = json_input::refuse_unknown_fields(object, {"id", "multiplier", "tokenizer", "operations", "exact"},
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

Result<Plan, Error> parse_plan(const Json& object, std::string_view where) {
    if (!object.is_object()) return unexpected(catalog_error("invalid_value", std::string(where) + " must be an object"));
    if (auto unknown = json_input::refuse_unknown_fields(object, {"id", "tokens_per_period", "avatars_per_period"}, where)) {
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
    return plan;
}

// Parses the array `key` of `document` element by element with `parse_one`.
template <typename T, typename Parse>
Result<std::vector<T>, Error> parse_list(const Json& document, std::string_view key, std::size_t max, Parse parse_one) {
    auto found = document.find(key);
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
    for (std::string_view required : {"free", "pro"}) {
        if (catalog.find_plan(required) == nullptr) {
            return catalog_error("missing_field", "catalog.plans has no \"" + std::string(required) +
                                                      "\" plan (subscriptions map onto free and pro)");
        }
    }
    return std::nullopt;
}

std::int64_t gcd(std::int64_t a, std::int64_t b) { return std::gcd(a, b); }

}  // namespace

bool operator==(const Multiplier& a, const Multiplier& b) {
    return a.numerator == b.numerator && a.denominator == b.denominator;
}

std::string to_string(const Multiplier& multiplier) {
    if (multiplier.denominator == 1) return std::to_string(multiplier.numerator);
    return std::to_string(multiplier.numerator) + "/" + std::to_string(multiplier.denominator);
}

Result<Multiplier, Error> parse_multiplier(std::string_view text) {
    const std::string positive = "a multiplier must be a positive rational such as \"3\", \"5/2\" or \"2.5\" "
                                 "with terms up to " + std::to_string(limits::multiplier_term_max);
    std::int64_t numerator = 0;
    std::int64_t denominator = 1;
    if (auto slash = text.find('/'); slash != std::string_view::npos) {
        auto n = small_decimal(text.substr(0, slash));
        auto d = small_decimal(text.substr(slash + 1));
        if (!n || !d) return unexpected(make_error("invalid_value", positive));
        numerator = *n;
        denominator = *d;
    } else if (auto dot = text.find('.'); dot != std::string_view::npos) {
        auto whole = small_decimal(text.substr(0, dot));
        std::string_view fraction = text.substr(dot + 1);
        auto fraction_value = small_decimal(fraction);
        if (!whole || !fraction_value || fraction.size() > 3) return unexpected(make_error("invalid_value", positive));
        denominator = 1;
        for (std::size_t i = 0; i < fraction.size(); ++i) denominator *= 10;
        numerator = *whole * denominator + *fraction_value;
    } else {
        auto n = small_decimal(text);
        if (!n) return unexpected(make_error("invalid_value", positive));
        numerator = *n;
    }
    if (numerator <= 0 || denominator <= 0) return unexpected(make_error("invalid_value", positive));
    const std::int64_t divisor = gcd(numerator, denominator);
    numerator /= divisor;
    denominator /= divisor;
    if (numerator > limits::multiplier_term_max || denominator > limits::multiplier_term_max) {
        return unexpected(make_error("invalid_value", positive));
    }
    return Multiplier{numerator, denominator};
}

std::string_view to_string(OperationKind kind) {
    switch (kind) {
        case OperationKind::chat: return "chat";
        case OperationKind::embedding: return "embedding";
        case OperationKind::avatar: return "avatar";
    }
    TM_ASSERT(false);
}

std::optional<OperationKind> operation_kind_from_string(std::string_view id) {
    if (id == "chat") return OperationKind::chat;
    if (id == "embedding") return OperationKind::embedding;
    if (id == "avatar") return OperationKind::avatar;
    return std::nullopt;
}

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

Result<Catalog, Error> parse_catalog(std::string_view json_text) {
    if (json_text.size() > limits::catalog_bytes_max) {
        return unexpected(catalog_error("too_large", "the catalog is larger than " +
                                                         std::to_string(limits::catalog_bytes_max) + " bytes"));
    }
    auto document = json_input::parse(json_text);
    if (!document) return unexpected(catalog_error("malformed", "the catalog is not valid JSON"));
    if (!document->is_object()) return unexpected(catalog_error("malformed", "the catalog must be a JSON object"));
    if (auto unknown = json_input::refuse_unknown_fields(*document, {"version", "operations", "models", "plans"}, "catalog")) {
        return unexpected(in_catalog(*unknown));
    }
    Catalog catalog;
    auto version = json_input::string_member(*document, "version", "catalog");
    if (!version) return unexpected(in_catalog(version.error()));
    if (!is_valid_id(*version)) {
        return unexpected(catalog_error("invalid_value", "catalog.version must be 1-64 characters of a-z, 0-9, '-', '_' or '.'"));
    }
    catalog.version = std::move(version).value();
    auto operations = parse_list<Operation>(*document, "operations", limits::catalog_operations_max, parse_operation);
    if (!operations) return unexpected(operations.error());
    catalog.operations = std::move(operations).value();
    auto models = parse_list<Model>(*document, "models", limits::catalog_models_max, parse_model);
    if (!models) return unexpected(models.error());
    catalog.models = std::move(models).value();
    auto plans = parse_list<Plan>(*document, "plans", limits::catalog_plans_max, parse_plan);
    if (!plans) return unexpected(plans.error());
    catalog.plans = std::move(plans).value();
    if (auto error = check_references(catalog)) return unexpected(*error);
    return catalog;
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

std::string catalog_to_json(const Catalog& catalog) {
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
        models.push_back({{"id", model.id},
                          {"multiplier", to_string(model.multiplier)},
                          {"tokenizer", to_string(model.tokenizer)},
                          {"exact", model.exact()},
                          {"operations", std::move(kinds)}});
    }
    Json plans = Json::array();
    for (const Plan& plan : catalog.plans) {
        plans.push_back({{"id", plan.id},
                         {"tokens_per_period", plan.tokens_per_period},
                         {"avatars_per_period", plan.avatars_per_period}});
    }
    Json document = {{"version", catalog.version}, {"operations", std::move(operations)},
                     {"models", std::move(models)}, {"plans", std::move(plans)}};
    return document.dump();
}

Result<std::int64_t, Error> apply_multiplier(std::int64_t raw_tokens, Multiplier multiplier) {
    TM_ASSERT(raw_tokens >= 0);
    TM_ASSERT(raw_tokens <= limits::count_max);
    TM_ASSERT(multiplier.numerator >= 1 && multiplier.numerator <= limits::multiplier_term_max);
    TM_ASSERT(multiplier.denominator >= 1 && multiplier.denominator <= limits::multiplier_term_max);
    // raw <= 2^53 - 1 and numerator <= 1000 < 2^10: the product stays below 2^63.
    const std::int64_t scaled = raw_tokens * multiplier.numerator;
    const std::int64_t charged = scaled / multiplier.denominator + (scaled % multiplier.denominator != 0 ? 1 : 0);
    if (charged > limits::count_max) {
        return unexpected(make_error("count_too_large", "the charge of " + std::to_string(raw_tokens) + " tokens x " +
                                                            to_string(multiplier) + " exceeds " +
                                                            std::to_string(limits::count_max)));
    }
    return charged;
}

namespace {

std::optional<Error> check_counts(std::int64_t input_tokens, std::int64_t output_tokens) {
    if (input_tokens < 0 || output_tokens < 0) {
        return make_error("invalid_count", "token counts must not be negative");
    }
    if (input_tokens > limits::count_max || output_tokens > limits::count_max ||
        input_tokens > limits::count_max - output_tokens) {
        return make_error("count_too_large", "token counts must add up to at most " + std::to_string(limits::count_max));
    }
    return std::nullopt;
}

Result<Charge, Error> price_avatar(const Operation& operation, const Model* model, std::int64_t input_tokens,
                                   std::int64_t output_tokens) {
    if (input_tokens != 0 || output_tokens != 0) {
        return unexpected(make_error("tokens_not_allowed", "an avatar has a flat price; send no token counts"));
    }
    Charge charge;
    charge.operation = OperationKind::avatar;
    if (model != nullptr) charge.model = model->id;
    charge.raw_tokens = operation.tokens_flat;
    charge.charged_tokens = operation.tokens_flat;
    charge.avatars = operation.avatars;
    return charge;
}

}  // namespace

Result<Charge, Error> price(const Catalog& catalog, std::string_view operation_id, std::string_view model_id,
                            std::int64_t input_tokens, std::int64_t output_tokens) {
    auto kind = operation_kind_from_string(operation_id);
    const Operation* operation = kind ? catalog.find_operation(*kind) : nullptr;
    if (operation == nullptr) {
        return unexpected(make_error("unknown_operation", "unknown operation \"" + std::string(operation_id) + "\""));
    }
    if (auto error = check_counts(input_tokens, output_tokens)) return unexpected(*error);
    const Model* model = model_id.empty() ? nullptr : catalog.find_model(model_id);
    if (!model_id.empty() && model == nullptr) {
        return unexpected(make_error("unknown_model", "unknown model \"" + std::string(model_id) + "\""));
    }
    if (operation->kind == OperationKind::avatar) {
        return price_avatar(*operation, model, input_tokens, output_tokens);
    }
    if (model == nullptr) {
        return unexpected(make_error("missing_field", "a " + std::string(operation_id) + " needs a model"));
    }
    if (!model->supports(operation->kind)) {
        return unexpected(make_error("model_not_allowed", "model \"" + model->id + "\" does not offer " +
                                                              std::string(operation_id)));
    }
    if (operation->kind == OperationKind::embedding && output_tokens != 0) {
        return unexpected(make_error("output_not_allowed", "an embedding has no output tokens"));
    }
    Charge charge;
    charge.operation = operation->kind;
    charge.model = model->id;
    charge.multiplier = model->multiplier;
    charge.input_tokens = input_tokens;
    charge.output_tokens = output_tokens;
    charge.raw_tokens = input_tokens + output_tokens;
    auto charged = apply_multiplier(charge.raw_tokens, model->multiplier);
    if (!charged) return unexpected(charged.error());
    charge.charged_tokens = *charged;
    return charge;
}

}  // namespace tokenmeter
