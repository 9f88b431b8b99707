// The vocabulary of one BPE encoding: token bytes by rank and a hash index
// from bytes to rank (internal to the core).
//
// All token bytes live in one blob in rank order; `offsets_` gives each
// token's slice. The index is a flat open-addressing table of 16-byte slots
// (linear probing, load factor at most 1/2). A slot holds the token's first 8
// bytes, its length and 24 bits of its hash, and its rank, so a lookup of a
// token of up to 8 bytes (most pieces) touches one cache line and never the
// blob; longer tokens compare their remaining bytes in the blob. tiktoken's
// notes call the whole-piece lookup the cache; this table is that cache.
// The ranks of all two-byte tokens are also kept in a direct 64 Ki table,
// because the merge loop starts by ranking every adjacent byte pair.
//
// Design notes (rejected alternatives):
//  * std::unordered_map<std::string, rank> allocates a node per token and
//    chases pointers on every probe, and building it at load time costs
//    200k allocations.
//  * 4-byte slots (rank and a hash tag) make the table 4x smaller but every
//    hit then reads the offsets array and the blob as well: three cache
//    misses instead of one. Measured slower on the benchmark corpus.
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
// More tokens than any encoding has; bounds what an asset may declare.
inline constexpr Rank rank_count_max = Rank{1} << 20;

inline std::uint64_t load_u64(const std::uint8_t* p) {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline std::uint64_t load_u32(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// The first min(8, n) bytes of p[0, n) as a little-endian word, zero-padded,
// reading no byte past p + n.
inline std::uint64_t head_word(const std::uint8_t* p, std::size_t n) {
    if (n >= 8) return load_u64(p);
    if (n >= 4) return load_u32(p) | ((load_u32(p + n - 4) >> (8 * (8 - n))) << 32);
    std::uint64_t head = 0;
    for (std::size_t i = 0; i < n; ++i) head |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return head;
}

// A 64-bit hash of a byte string whose head_word is `head`: one multiply per
// 8 bytes and a final avalanche. No 128-bit multiply, so it is as fast in
// wasm as natively.
inline std::uint64_t hash_bytes(const std::uint8_t* p, std::size_t n, std::uint64_t head) {
    constexpr std::uint64_t k1 = 0x9E3779B97F4A7C15ull;
    constexpr std::uint64_t k2 = 0xC2B2AE3D27D4EB4Full;
    std::uint64_t h = (k2 ^ (static_cast<std::uint64_t>(n) * k1) ^ head) * k1;
    if (n > 8) {
        for (std::size_t i = 8; i + 8 < n; i += 8) {
            h ^= h >> 29;
            h = (h ^ load_u64(p + i)) * k1;
        }
        h ^= h >> 29;
        h = (h ^ load_u64(p + n - 8)) * k1;  // the last word, overlapping
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
        const std::uint64_t head = head_word(p, n);
        const std::uint64_t h = hash_bytes(p, n, head);
        const std::uint32_t check = slot_check(h, n);
        for (std::size_t i = static_cast<std::size_t>(h) & mask_;; i = (i + 1) & mask_) {
            const Slot& slot = slots_[i];
            if (slot.rank == no_rank) return no_rank;
            if (slot.check == check && slot.head == head &&
                (n <= 8 || std::memcmp(token_data(slot.rank) + 8, p + 8, n - 8) == 0)) {
                return slot.rank;
            }
        }
    }

    // The rank of a two-byte string, from the direct table.
    Rank find_pair_of_bytes(const std::uint8_t* p) const {
        return byte_pair_ranks_[(static_cast<std::size_t>(p[0]) << 8) | p[1]];
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
    struct Slot {
        std::uint64_t head = 0;   // head_word of the token
        std::uint32_t check = 0;  // slot_check of the token
        Rank rank = no_rank;      // no_rank marks an empty slot
    };
    static_assert(sizeof(Slot) == 16);

    static std::uint32_t slot_check(std::uint64_t hash, std::size_t n) {
        return static_cast<std::uint32_t>(n) | (static_cast<std::uint32_t>(hash >> 40) << 8);
    }

    void build_index();

    std::string name_;
    PatternKind pattern_ = PatternKind::o200k;
    std::vector<std::uint8_t> blob_;
    std::vector<std::uint32_t> offsets_;  // size() + 1 entries
    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    std::vector<Rank> byte_pair_ranks_;  // 65536 entries
    Rank byte_ranks_[256] = {};
    std::vector<Special> specials_;
};

}  // namespace tokenmeter::bpe
