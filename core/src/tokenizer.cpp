#include "tokenmeter/tokenizer.hpp"

#include <sodium.h>

#include <array>
#include <mutex>

#include "bpe.hpp"
#include "pretokenizer.hpp"
#include "tokenmeter/limits.hpp"
#include "utf8.hpp"
#include "vocabulary.hpp"

namespace tokenmeter {

namespace {

struct PinnedAsset {
    TokenizerKind kind;
    std::string_view name;
    bpe::PatternKind pattern;
    // SHA-256 of the asset tools/tokenizer/make_encoding_asset.mjs makes from
    // the pinned rank data; it changes only with the asset format.
    std::string_view sha256;
};

constexpr std::array<PinnedAsset, 2> pinned_assets = {{
    {TokenizerKind::o200k_base, "o200k_base", bpe::PatternKind::o200k,
     "8c3dbf075f24bf257b58dcd0575cef49f418ec7fff0f1ff930e6d64f7bc0b8d7"},
    {TokenizerKind::cl100k_base, "cl100k_base", bpe::PatternKind::cl100k,
     "320df9a7ae828f51636be243c178d6a82cac975dfe89f5fdc5ffe6687fd2c00c"},
}};

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, bytes.data(), bytes.size());
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * sizeof digest);
    for (const unsigned char b : digest) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

struct CountSink {
    std::int64_t count = 0;
    void add(bpe::Rank) { ++count; }
    void add(const bpe::Rank*, std::size_t n) { count += static_cast<std::int64_t>(n); }
};

struct VectorSink {
    std::vector<TokenId>& out;
    void add(bpe::Rank rank) { out.push_back(rank); }
    void add(const bpe::Rank* ranks, std::size_t n) { out.insert(out.end(), ranks, ranks + n); }
};

std::optional<Error> check_text(std::string_view text) {
    if (text.size() > limits::text_bytes_max) {
        return make_error("text_too_large", "the text has " + std::to_string(text.size()) +
                                                " bytes; at most " + std::to_string(limits::text_bytes_max) +
                                                " are counted at once");
    }
    if (const auto offset = utf8::first_invalid_offset(text)) {
        return make_error("invalid_utf8", "invalid UTF-8 at byte offset " +
                                              std::to_string(*offset));
    }
    return std::nullopt;
}

}  // namespace

struct Encoding::Data {
    TokenizerKind kind;
    bpe::Vocabulary vocabulary;
    // Built on the first piece too long for the merge loop; most texts never
    // have one, and the tables take about 4 ms and 4 MB (o200k_base).
    mutable std::once_flag backtrack_once;
    mutable std::unique_ptr<bpe::BacktrackTables> backtrack;

    const bpe::BacktrackTables& backtrack_tables() const {
        std::call_once(backtrack_once, [this] { backtrack = std::make_unique<bpe::BacktrackTables>(vocabulary); });
        return *backtrack;
    }

    template <typename Sink>
    void encode_piece(const std::uint8_t* piece, std::size_t n, std::vector<bpe::Rank>& scratch, Sink& sink) const {
        // Whole-piece lookup first: most pieces are a single token.
        const bpe::Rank whole = vocabulary.find(piece, n);
        if (whole != bpe::no_rank) {
            sink.add(whole);
            return;
        }
        if (n <= bpe::merge_piece_bytes_max) {
            bpe::Rank ranks[bpe::merge_piece_bytes_max];
            sink.add(ranks, bpe::merge_encode(vocabulary, piece, n, ranks));
            return;
        }
        scratch.clear();
        bpe::backtrack_encode(vocabulary, backtrack_tables(), piece, n, scratch);
        sink.add(scratch.data(), scratch.size());
    }

    template <pretokenizer::Pattern pattern, typename Sink>
    void encode_pieces(std::string_view text, Sink& sink) const {
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data());
        std::vector<bpe::Rank> scratch;
        pretokenizer::for_each_piece<pattern>(
            text, [&](std::size_t begin, std::size_t end) { encode_piece(bytes + begin, end - begin, scratch, sink); });
    }

    template <typename Sink>
    void encode(std::string_view text, Sink& sink) const {
        if (vocabulary.pattern() == bpe::PatternKind::o200k) {
            encode_pieces<pretokenizer::Pattern::o200k>(text, sink);
        } else {
            encode_pieces<pretokenizer::Pattern::cl100k>(text, sink);
        }
    }
};

std::optional<std::size_t> utf8_error_offset(std::string_view text) { return utf8::first_invalid_offset(text); }

std::string_view encoding_asset_sha256(TokenizerKind kind) {
    for (const PinnedAsset& pinned : pinned_assets) {
        if (pinned.kind == kind) return pinned.sha256;
    }
    return {};
}

Result<Encoding, Error> Encoding::load(std::span<const std::uint8_t> asset) {
    if (asset.size() > limits::encoding_asset_bytes_max) {
        return unexpected(make_error("encoding_asset_too_large",
                                     "the encoding asset has " + std::to_string(asset.size()) + " bytes"));
    }
    const std::string digest = sha256_hex(asset);
    const PinnedAsset* pinned = nullptr;
    for (const PinnedAsset& candidate : pinned_assets) {
        if (candidate.sha256 == digest) pinned = &candidate;
    }
    if (pinned == nullptr) {
        return unexpected(make_error("encoding_asset_unknown",
                                     "the encoding asset (SHA-256 " + digest +
                                         ") is not o200k_base.tmbpe or cl100k_base.tmbpe as this build makes them"));
    }
    auto vocabulary = bpe::Vocabulary::parse(asset);
    if (!vocabulary) return unexpected(vocabulary.error());
    // The digest pins the content; these only guard the pinned table itself.
    TM_ASSERT(vocabulary->name() == pinned->name);
    TM_ASSERT(vocabulary->pattern() == pinned->pattern);
    auto data = std::make_unique<Data>();
    data->kind = pinned->kind;
    data->vocabulary = std::move(vocabulary).value();
    return Encoding(std::move(data));
}

Encoding::Encoding(std::unique_ptr<Data> data) : data_(std::move(data)) {}
Encoding::Encoding(Encoding&&) noexcept = default;
Encoding& Encoding::operator=(Encoding&&) noexcept = default;
Encoding::~Encoding() = default;

TokenizerKind Encoding::kind() const { return data_->kind; }
std::string_view Encoding::name() const { return data_->vocabulary.name(); }
std::size_t Encoding::token_count() const { return data_->vocabulary.size(); }

Result<std::vector<TokenId>, Error> Encoding::encode_ordinary(std::string_view text) const {
    if (auto error = check_text(text)) return unexpected(std::move(*error));
    std::vector<TokenId> tokens;
    tokens.reserve(text.size() / 4 + 1);
    VectorSink sink{tokens};
    data_->encode(text, sink);
    return tokens;
}

Result<std::int64_t, Error> Encoding::count(std::string_view text) const {
    if (auto error = check_text(text)) return unexpected(std::move(*error));
    CountSink sink;
    data_->encode(text, sink);
    return sink.count;
}

Result<std::string, Error> Encoding::decode_bytes(std::span<const TokenId> tokens) const {
    const bpe::Vocabulary& vocabulary = data_->vocabulary;
    std::string out;
    for (const TokenId id : tokens) {
        if (id >= vocabulary.size()) {
            return unexpected(make_error("unknown_token_id", "token id " + std::to_string(id) + " is not in " +
                                                                 vocabulary.name()));
        }
        out.append(reinterpret_cast<const char*>(vocabulary.token_data(id)), vocabulary.token_length(id));
    }
    return out;
}

std::optional<TokenId> Encoding::special_token_id(std::string_view text) const {
    for (const auto& special : data_->vocabulary.specials()) {
        if (special.text == text) return special.id;
    }
    return std::nullopt;
}

}  // namespace tokenmeter
