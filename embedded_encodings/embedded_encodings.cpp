#include "tokenmeter/embedded_encodings.hpp"

#include <cstdio>

#include "tokenmeter/assert.hpp"

extern "C" {
extern const std::uint8_t tm_asset_o200k_base_begin[];
extern const std::uint8_t tm_asset_o200k_base_end[];
extern const std::uint8_t tm_asset_cl100k_base_begin[];
extern const std::uint8_t tm_asset_cl100k_base_end[];
}

namespace tokenmeter {

namespace {

const Encoding& load_or_abort(TokenizerKind kind) {
    auto encoding = Encoding::load(embedded_encoding_asset(kind));
    if (!encoding) {
        std::fprintf(stderr, "tokenmeter: the embedded %s asset does not load: %s\n",
                     std::string(to_string(kind)).c_str(), encoding.error().message.c_str());
        std::abort();
    }
    // Leaked on purpose: it lives as long as the process, and no destructor
    // order at exit can then touch it.
    return *new Encoding(std::move(encoding).value());
}

}  // namespace

std::span<const std::uint8_t> embedded_encoding_asset(TokenizerKind kind) {
    switch (kind) {
        case TokenizerKind::o200k_base:
            return {tm_asset_o200k_base_begin, tm_asset_o200k_base_end};
        case TokenizerKind::cl100k_base:
            return {tm_asset_cl100k_base_begin, tm_asset_cl100k_base_end};
        case TokenizerKind::estimate:
            break;
    }
    TM_ASSERT(false && "the estimate has no encoding asset; see encoding_kind_for()");
    return {};
}

const Encoding& embedded_encoding(TokenizerKind kind) {
    TM_ASSERT(kind != TokenizerKind::estimate);
    if (kind == TokenizerKind::o200k_base) {
        static const Encoding& o200k = load_or_abort(TokenizerKind::o200k_base);
        return o200k;
    }
    static const Encoding& cl100k = load_or_abort(TokenizerKind::cl100k_base);
    return cl100k;
}

}  // namespace tokenmeter
