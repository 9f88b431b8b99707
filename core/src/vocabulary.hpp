// The vocabulary of one BPE encoding: token bytes by rank and a hash index
// from bytes to rank (internal to the core).
//
// All token bytes live in one blob in rank order; `offsets_` gives each
// token's slice. The index is a flat open-addressing table of 32-bit slots
// (linear probing, load factor at most 1/2): the low 18 bits hold the rank and
// the high 14 bits a tag from the hash, so most non-matching probes are
// rejected without touching the blob. One lookup therefore costs a hash of
// the bytes, usually one slot read and one memcmp. tiktoken's own notes say the
// whole-piece lookup is the cache; this table is that cache.
//
// Design notes (rejected alternatives):
//  * std::unordered_map<std::string, rank> allocates a node per token and
//    chases pointers on every probe, and building it at load time costs
//    200k allocations.
//  * Storing full 64-bit hashes per slot doubles the table for no measurable
//    gain over a 14-bit tag.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::bpe {

using Rank = std::uint32_t;

inline constexpr Rank no_rank = 0xFFFFFFFFu;
// The longest token of either vocabulary (asserted when loading).
inline constexpr std::size_t token_bytes_max = 128;
// Ranks must fit the slot's rank field.
inline constexpr unsigned rank_bits = 18;
inline constexpr Rank rank_count_max = Rank{1} << rank_bits;

// A 64-bit hash of a short byte string: whole 64-bit words (the last one
// overlapping), each mixed with a multiply, then a final avalanche. No 128-bit
// multiply, so it is as fast in wasm as natively.
inline std::uint64_t hash_bytes(const std::uint8_t* p, std::size_t n) {
    constexpr std::uint64_t k1 = 0x9E3779B97F4A7C15ull;
    constexpr std::uint64_t k2 = 0xC2B2AE3D27D4EB4Full;
    std::uint64_t h = k2 ^ (static_cast<std::uint64_t>(n) * k1);
    auto load32 = [](const std::uint8_t* q) {
        std::uint32_t v;
        std::memcpy(&v, q, sizeof v);
        return static_cast<std::uint64_t>(v);
    };
    if (n >= 8) {
        std::size_t i = 0;
        for (; i + 8 < n; i += 8) {
            std::uint64_t w;
            std::memcpy(&w, p + i, sizeof w);
            h = (h ^ w) * k1;
            h ^= h >> 29;
        }
        std::uint64_t w;
        std::memcpy(&w, p + n - 8, sizeof w);
        h = (h ^ w) * k1;
    } else if (n >= 4) {
        h = (h ^ (load32(p) | (load32(p + n - 4) << 32))) * k1;
    } else if (n > 0) {
        const std::uint64_t w = static_cast<std::uint64_t>(p[0]) | (static_cast<std::uint64_t>(p[n / 2]) << 8) |
                                (static_cast<std::uint64_t>(p[n - 1]) << 16);
        h = (h ^ w) * k1;
    }
    h ^= h >> 32;
    h *= k2;
    h ^= h >> 29;
    return h;
}

enum class PatternKind : std::uint8_t { o200k = 0, cl100k = 1 };

class Vocabulary {
public:
    // Parses an asset (see tools/tokenizer/make_encoding_asset.mjs) and builds
    // the index. Errors: encoding_asset_invalid.
    static Result<Vocabulary, Error> parse(std::span<const std::uint8_t> asset);

    const std::string& name() const { return name_; }
    PatternKind pattern() const { return pattern_; }
    std::size_t size() const { return offsets_.size() - 1; }
    std::size_t blob_size() const { return blob_.size(); }

    std::size_t token_length(Rank rank) const { return offsets_[rank + 1] - offsets_[rank]; }
    const std::uint8_t* token_data(Rank rank) const { return blob_.data() + offsets_[rank]; }
    Rank byte_rank(std::uint8_t b) const { return byte_ranks_[b]; }

    // The rank of exactly these bytes, or no_rank.
    Rank find(const std::uint8_t* p, std::size_t n) const {
        if (n == 0 || n > token_bytes_max) return no_rank;
        const std::uint64_t h = hash_bytes(p, n);
        const std::uint32_t tag = static_cast<std::uint32_t>(h >> (64 - (32 - rank_bits)));
        std::size_t i = static_cast<std::size_t>(h) & mask_;
        for (;;) {
            const std::uint32_t slot = slots_[i];
            if (slot == empty_slot) return no_rank;
            if ((slot >> rank_bits) == tag) {
                const Rank rank = slot & (rank_count_max - 1);
                if (token_length(rank) == n && std::memcmp(token_data(rank), p, n) == 0) return rank;
            }
            i = (i + 1) & mask_;
        }
    }

    // The rank of the concatenation of two tokens' bytes, or no_rank.
    Rank find_pair(Rank left, Rank right) const {
        const std::size_t left_length = token_length(left);
        const std::size_t n = left_length + token_length(right);
        if (n > token_bytes_max) return no_rank;
        std::uint8_t buffer[token_bytes_max];
        std::memcpy(buffer, token_data(left), left_length);
        std::memcpy(buffer + left_length, token_data(right), n - left_length);
        return find(buffer, n);
    }

    // The special tokens of the encoding (not used by encode_ordinary).
    struct Special {
        std::string text;
        std::uint32_t id;
    };
    const std::vector<Special>& specials() const { return specials_; }

private:
    static constexpr std::uint32_t empty_slot = 0xFFFFFFFFu;

    void build_index();

    std::string name_;
    PatternKind pattern_ = PatternKind::o200k;
    std::vector<std::uint8_t> blob_;
    std::vector<std::uint32_t> offsets_;  // size() + 1 entries
    std::vector<std::uint32_t> slots_;
    std::size_t mask_ = 0;
    Rank byte_ranks_[256] = {};
    std::vector<Special> specials_;
};

}  // namespace tokenmeter::bpe
