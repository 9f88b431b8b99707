// Exact token counts for OpenAI's o200k_base and cl100k_base encodings.
//
// An Encoding is loaded from the bytes of a binary asset made at build time
// from the `tiktoken` npm package's rank data
// (tools/tokenizer/make_encoding_asset.mjs); the core does no I/O, so the
// native build embeds the assets and the browser SDK fetches them. Loading
// checks the asset's SHA-256 against the digests pinned here, so counts always
// come from exactly the published vocabularies.
//
// encode_ordinary and count give the token ids (or their number) that
// tiktoken's `encode_ordinary` gives: special-token strings such as
// "<|endoftext|>" are ordinary text. Text must be valid UTF-8 (JavaScript
// callers convert with TextEncoder, which turns lone surrogates into U+FFFD as
// tiktoken does).
//
// Time is linear in the text, whatever the text: the pre-tokenizer is a
// hand-written scanner (no regex backtracking), and pieces longer than
// bpe::merge_piece_bytes_max bytes are encoded by a linear backtracking BPE
// encoder instead of tiktoken's quadratic merge loop (see core/src/bpe.hpp).
//
// An Encoding is immutable after load and safe to share between threads; the
// tables for very long pieces are built once, on first use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

using TokenId = std::uint32_t;

// The offset of the first byte of `text` that does not start a well-formed
// UTF-8 sequence, or nullopt when the text is valid UTF-8.
std::optional<std::size_t> utf8_error_offset(std::string_view text);

class Encoding {
public:
    // Loads an encoding asset. Errors: encoding_asset_too_large,
    // encoding_asset_unknown (the SHA-256 is not a pinned asset's),
    // encoding_asset_invalid.
    static Result<Encoding, Error> load(std::span<const std::uint8_t> asset);

    Encoding(Encoding&&) noexcept;
    Encoding& operator=(Encoding&&) noexcept;
    ~Encoding();

    // TokenizerKind::o200k_base or TokenizerKind::cl100k_base.
    TokenizerKind kind() const;
    std::string_view name() const;
    // Number of mergeable tokens (ids 0 .. token_count() - 1).
    std::size_t token_count() const;

    // The token ids of `text`, as tiktoken's encode_ordinary gives them.
    // Errors: text_too_large (over limits::text_bytes_max), invalid_utf8 (the
    // message names the byte offset).
    Result<std::vector<TokenId>, Error> encode_ordinary(std::string_view text) const;

    // The number of tokens encode_ordinary would return, without the ids.
    Result<std::int64_t, Error> count(std::string_view text) const;

    // The bytes of the tokens, concatenated (a token may hold part of a UTF-8
    // sequence, so a sub-range of ids need not decode to valid UTF-8).
    // Errors: unknown_token_id.
    Result<std::string, Error> decode_bytes(std::span<const TokenId> tokens) const;

    // The id of a special token of this encoding ("<|endoftext|>"), for
    // callers that build chat templates themselves; encode_ordinary never
    // produces these ids.
    std::optional<TokenId> special_token_id(std::string_view text) const;

private:
    struct Data;
    explicit Encoding(std::unique_ptr<Data> data);
    std::unique_ptr<Data> data_;
};

// The SHA-256 (lowercase hex) pinned for each encoding's asset, for
// diagnostics and for tools that ship the assets.
std::string_view encoding_asset_sha256(TokenizerKind kind);

}  // namespace tokenmeter
