// Fuzzes the catalog parser (core/include/tokenmeter/catalog.hpp): the bytes
// are a catalog file (TOKENMETER_CATALOG_FILE).
//
// Invariants besides "no crash": a parsed catalog has what the header
// promises (unique ids, the free and pro plans, reduced multipliers within
// bounds, every offered operation defined); written out as GET /v1/catalog
// serves it, it parses to the same catalog; and pricing any of its models for
// any operation gives a charge or an error, never an overflow.
#include <numeric>
#include <string>

#include "fuzz_input.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokenmeter/limits.hpp"

namespace tokenmeter::fuzz {
namespace {

void check_multiplier(const Multiplier& multiplier) {
    TM_ASSERT(multiplier.numerator >= 1 && multiplier.numerator <= limits::multiplier_term_max);
    TM_ASSERT(multiplier.denominator >= 1 && multiplier.denominator <= limits::multiplier_term_max);
    TM_ASSERT(std::gcd(multiplier.numerator, multiplier.denominator) == 1);
    auto again = parse_multiplier(to_string(multiplier));
    TM_ASSERT(again.has_value() && *again == multiplier);
}

void check_shape(const Catalog& catalog) {
    TM_ASSERT(catalog.find_plan("free") != nullptr && catalog.find_plan("pro") != nullptr);
    for (const Model& model : catalog.models) {
        TM_ASSERT(catalog.find_model(model.id) == &model);
        check_multiplier(model.multiplier);
        for (OperationKind kind : model.operations) TM_ASSERT(catalog.find_operation(kind) != nullptr);
    }
    for (const Plan& plan : catalog.plans) TM_ASSERT(catalog.find_plan(plan.id) == &plan);
}

// Prices with the largest counts a charge may have: errors are fine, a
// charge must be in range.
void check_prices(const Catalog& catalog) {
    const std::int64_t half = limits::count_max / 2;
    for (const Operation& operation : catalog.operations) {
        const std::string_view id = to_string(operation.kind);
        for (const Model& model : catalog.models) {
            for (std::int64_t input : {std::int64_t{0}, std::int64_t{1000}, half}) {
                auto charge = price(catalog, id, model.id, input, operation.kind == OperationKind::chat ? input : 0);
                if (charge) TM_ASSERT(charge->charged_tokens >= 0 && charge->charged_tokens <= limits::count_max);
            }
        }
    }
}

}  // namespace
}  // namespace tokenmeter::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tokenmeter;
    using namespace tokenmeter::fuzz;
    auto catalog = parse_catalog(text_of(data, size));
    if (!catalog) return 0;
    check_shape(*catalog);
    const std::string served = catalog_to_json(*catalog);
    auto again = parse_catalog(served);
    TM_ASSERT(again.has_value());
    TM_ASSERT(catalog_to_json(*again) == served);
    check_prices(*catalog);
    return 0;
}
