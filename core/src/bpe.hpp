// Byte-pair encoding of one piece, exactly as tiktoken does it (internal to
// the core).
//
// tiktoken encodes a piece by looking the whole piece up first and, on a miss,
// by `_byte_pair_merge`: repeatedly merge the adjacent pair of parts whose
// concatenated bytes have the lowest rank (leftmost on ties). That loop is
// quadratic in the piece length, and a piece can be as long as the text
// (a megabyte of letters or spaces is one piece), so the core uses two exact
// algorithms:
//
//  * merge_encode: tiktoken's loop, for pieces up to merge_piece_bytes_max
//    bytes, where it is fastest (its scans are short and cache-friendly);
//  * backtrack_encode: the backtracking encoder of GitHub's `bpe` crate
//    (github/rust-gems), linear in the piece length, for longer pieces.
//
// The backtracking encoder rests on two facts about BPE: the encoding of a
// text is unique, and a token sequence is that encoding iff every adjacent
// pair of tokens is one BPE would leave unmerged ("compatible"). It walks the
// text left to right taking the longest token that matches, falls back to the
// next shorter prefix token when the pair with the previous token is not
// compatible, and backtracks (popping a token) when no candidate is left; a
// bitfield of positions known to be dead ends keeps the total work linear.
// The compatibility test replays the merges at the boundary of two tokens from
// their split trees, top down, checking that BPE never prefers the pair across
// the boundary.
//
// Two choices keep it identical to tiktoken rather than to an idealized BPE:
//  * a token's split (its last merge) is the last merge tiktoken's own loop
//    makes on the token's bytes, computed at build time;
//  * the pair across a boundary is ranked by the rank of its concatenated
//    bytes, as tiktoken ranks pairs, not by a (token, token) merge table.
// The construction checks the property the algorithm needs (every token is
// produced by tiktoken's loop on its own bytes, and merges only ever create
// tokens of higher rank than their parts), and the tests compare both
// encoders on every token, on random long texts and against tiktoken itself.
#pragma once

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "vocabulary.hpp"

namespace tokenmeter::bpe {

// Pieces up to this length go through tiktoken's merge loop: its scans are
// quadratic but short, and it needs no extra tables. Longer pieces (which are
// never whole tokens, since no token is longer than 128 bytes) go through the
// linear backtracking encoder. Measured on this project's corpus, the merge
// loop is faster below this length and the backtracking encoder above it.
inline constexpr std::size_t merge_piece_bytes_max = 128;
static_assert(merge_piece_bytes_max >= token_bytes_max, "token splits are computed with merge_encode");

struct Split {
    Rank left;
    Rank right;
};

// tiktoken's _byte_pair_merge over piece[0, n), 1 <= n <= merge_piece_bytes_max.
// Writes the ranks to `out` (room for n) and returns how many. When `last` is
// given it receives the parts of the last merge made (unchanged if none).
std::size_t merge_encode(const Vocabulary& vocabulary, const std::uint8_t* piece, std::size_t n, Rank* out,
                         Split* last = nullptr);

// What the backtracking encoder needs beyond the vocabulary, built on first
// use in a few milliseconds:
//  * longest_match: the longest token that is a prefix of the text at a
//    position. Two bit filters, indexed by an incremental (byte-at-a-time)
//    hash, say which byte strings may be a token's prefix and which may be a
//    token. The scan extends the candidate a byte at a time while the prefix
//    filter allows it (no false negatives, so it never stops early) and
//    confirms likely tokens with an exact lookup in the vocabulary. A trie
//    would need one random probe per token byte to build (1.4 M for
//    o200k_base, about 100 ms); the filters take one bit each.
//  * next_prefix and split: per token, computed when first asked for and
//    memoized in atomics (the values are deterministic, so a race only
//    computes one twice), so a shared Encoding stays safe across threads.
class BacktrackTables {
public:
    explicit BacktrackTables(const Vocabulary& vocabulary);

    // The longest token that is a prefix of p[0, n), n >= 1.
    Rank longest_match(const std::uint8_t* p, std::size_t n) const;
    // The longest token that is a proper prefix of `rank`'s bytes, or no_rank.
    Rank next_prefix(Rank rank) const;
    // The two tokens whose merge made `rank` (the last merge tiktoken's loop
    // makes on the token's bytes); {rank, rank} for a single byte.
    Split split(Rank rank) const;

private:
    static std::uint64_t step(std::uint64_t hash, std::uint8_t byte) {
        return (hash ^ byte) * 0x9E3779B97F4A7C15ull;
    }
    static constexpr std::uint64_t seed = 0x243F6A8885A308D3ull;
    std::size_t prefix_bit(std::uint64_t hash) const { return static_cast<std::size_t>(hash >> prefix_shift_); }
    std::size_t token_bit(std::uint64_t hash) const {
        return static_cast<std::size_t>((hash * 0xC2B2AE3D27D4EB4Full) >> token_shift_);
    }
    static bool test(const std::vector<std::uint64_t>& bits, std::size_t i) {
        return ((bits[i / 64] >> (i % 64)) & 1u) != 0;
    }

    const Vocabulary& vocabulary_;
    unsigned prefix_shift_ = 0;
    unsigned token_shift_ = 0;
    std::vector<std::uint64_t> prefix_bits_;
    std::vector<std::uint64_t> token_bits_;
    // 0 = not yet computed, else value + 1 (next_prefix) or both ranks + 1.
    std::unique_ptr<std::atomic<std::uint32_t>[]> next_prefix_memo_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> split_memo_;
};

// Appends the encoding of piece[0, n) to `out`. Linear in n (times at most
// token_bytes_max candidate tokens per position). Returns how many candidate
// tokens it tried, each a bounded amount of work (a longest match of at most
// token_bytes_max bytes, a compatibility check at most as deep as the two
// tokens are long): the tests bound this count, which unlike a time does not
// depend on how busy the machine is.
std::size_t backtrack_encode(const Vocabulary& vocabulary, const BacktrackTables& tables, const std::uint8_t* piece,
                             std::size_t n, std::vector<Rank>& out);

}  // namespace tokenmeter::bpe
