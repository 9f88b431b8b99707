#include "bpe.hpp"

#include <bit>
#include <cstring>

#include "tokenmeter/assert.hpp"

namespace tokenmeter::bpe {

std::size_t merge_encode(const Vocabulary& vocabulary, const std::uint8_t* piece, std::size_t n, Rank* out,
                         Split* last) {
    TM_ASSERT(n >= 1 && n <= merge_piece_bytes_max);
    // Part i covers piece[start[i], start[i + 1]) and is token[i];
    // pair_rank[i] ranks the merge of parts i and i + 1.
    std::uint32_t start[merge_piece_bytes_max + 1];
    Rank token[merge_piece_bytes_max];
    Rank pair_rank[merge_piece_bytes_max];
    std::size_t parts = n;
    for (std::size_t i = 0; i < n; ++i) {
        start[i] = static_cast<std::uint32_t>(i);
        token[i] = vocabulary.byte_rank(piece[i]);
        pair_rank[i] = i + 1 < n ? vocabulary.find_pair_of_bytes(piece + i) : no_rank;
    }
    start[n] = static_cast<std::uint32_t>(n);
    auto span_rank = [&](std::size_t first, std::size_t end_part) {
        return vocabulary.find(piece + start[first], start[end_part] - start[first]);
    };
    for (;;) {
        Rank best = no_rank;
        std::size_t at = 0;
        for (std::size_t i = 0; i + 1 < parts; ++i) {
            if (pair_rank[i] < best) {
                best = pair_rank[i];
                at = i;
            }
        }
        if (best == no_rank) break;
        if (last != nullptr) *last = Split{token[at], token[at + 1]};
        token[at] = best;
        // Remove part at + 1.
        const std::size_t tail = parts - at - 2;
        std::memmove(start + at + 1, start + at + 2, (tail + 1) * sizeof start[0]);
        std::memmove(token + at + 1, token + at + 2, tail * sizeof token[0]);
        std::memmove(pair_rank + at + 1, pair_rank + at + 2, tail * sizeof pair_rank[0]);
        --parts;
        if (at > 0) pair_rank[at - 1] = span_rank(at - 1, at + 1);
        pair_rank[at] = at + 1 < parts ? span_rank(at, at + 2) : no_rank;
    }
    std::memcpy(out, token, parts * sizeof token[0]);
    return parts;
}

namespace {

unsigned shift_for_bits(std::size_t wanted) {
    const std::size_t bits = std::bit_ceil(wanted);
    return static_cast<unsigned>(64 - std::countr_zero(bits));
}

void set_bit(std::vector<std::uint64_t>& bits, std::size_t i) { bits[i / 64] |= std::uint64_t{1} << (i % 64); }

}  // namespace

BacktrackTables::BacktrackTables(const Vocabulary& vocabulary) : vocabulary_(vocabulary) {
    const std::size_t count = vocabulary.size();
    const std::size_t blob_bytes = vocabulary.blob_size();
    // About 16 bits per distinct prefix and per token: false positives stay
    // near 5 %, and the filters (1.5 MB for o200k_base) stay cache-friendly.
    prefix_shift_ = shift_for_bits(blob_bytes * 4);
    token_shift_ = shift_for_bits(count * 16);
    prefix_bits_.assign((std::size_t{1} << (64 - prefix_shift_)) / 64, 0);
    token_bits_.assign((std::size_t{1} << (64 - token_shift_)) / 64, 0);
    for (Rank rank = 0; rank < count; ++rank) {
        const std::uint8_t* bytes = vocabulary.token_data(rank);
        std::uint64_t hash = seed;
        for (std::size_t i = 0; i < vocabulary.token_length(rank); ++i) {
            hash = step(hash, bytes[i]);
            set_bit(prefix_bits_, prefix_bit(hash));
        }
        set_bit(token_bits_, token_bit(hash));
    }
    next_prefix_memo_ = std::make_unique<std::atomic<std::uint32_t>[]>(count);
    split_memo_ = std::make_unique<std::atomic<std::uint64_t>[]>(count);
}

Rank BacktrackTables::longest_match(const std::uint8_t* p, std::size_t n) const {
    Rank best = no_rank;
    std::uint64_t hash = seed;
    const std::size_t limit = n < token_bytes_max ? n : token_bytes_max;
    for (std::size_t i = 0; i < limit; ++i) {
        hash = step(hash, p[i]);
        if (!test(prefix_bits_, prefix_bit(hash))) break;
        if (test(token_bits_, token_bit(hash))) {
            const Rank rank = vocabulary_.find(p, i + 1);
            if (rank != no_rank) best = rank;
        }
    }
    TM_ASSERT(best != no_rank);  // every single byte is a token
    return best;
}

Rank BacktrackTables::next_prefix(Rank rank) const {
    const std::size_t length = vocabulary_.token_length(rank);
    if (length == 1) return no_rank;
    const std::uint32_t memo = next_prefix_memo_[rank].load(std::memory_order_relaxed);
    if (memo != 0) return memo - 1;
    const Rank prefix = longest_match(vocabulary_.token_data(rank), length - 1);
    next_prefix_memo_[rank].store(prefix + 1, std::memory_order_relaxed);
    return prefix;
}

Split BacktrackTables::split(Rank rank) const {
    const std::uint64_t memo = split_memo_[rank].load(std::memory_order_relaxed);
    if (memo != 0) {
        return Split{static_cast<Rank>(memo & 0xFFFFFFFFu) - 1, static_cast<Rank>(memo >> 32) - 1};
    }
    Split split{rank, rank};
    const std::size_t length = vocabulary_.token_length(rank);
    if (length > 1) {
        Rank merged[merge_piece_bytes_max];
        const std::size_t parts = merge_encode(vocabulary_, vocabulary_.token_data(rank), length, merged, &split);
        // The backtracking encoder is exact for vocabularies where tiktoken's
        // loop makes every token from its own bytes and every merge creates a
        // token ranked above its parts. Both pinned encodings are; the tests
        // check every token.
        TM_ASSERT(parts == 1 && merged[0] == rank);
        TM_ASSERT(split.left < rank && split.right < rank);
    }
    split_memo_[rank].store((std::uint64_t{split.right} + 1) << 32 | (std::uint64_t{split.left} + 1),
                            std::memory_order_relaxed);
    return split;
}

namespace {

// Whether BPE leaves the adjacent tokens `left`, `right` unmerged: replay the
// merges at their boundary from the most recent down, and check that the pair
// across the boundary never outranks the merge that was actually made.
// (rust-gems bpe `is_valid_token_pair`, with tiktoken's byte-string ranks.)
bool compatible(const Vocabulary& vocabulary, const BacktrackTables& tables, Rank left, Rank right) {
    Rank limit = no_rank;
    for (;;) {
        const Rank across = vocabulary.find_pair(left, right);
        if (across != no_rank && across < limit) return false;
        if (left > right) {
            // `left` was merged last; on a tie the merge further left wins,
            // which is `left`'s own merge, so the limit is its rank itself.
            limit = left;
            left = tables.split(left).right;
            if (left == limit) {
                limit = right + 1;
                right = tables.split(right).left;
                if (right + 1 == limit) return true;
            }
        } else {
            // `right` was merged last; a tie goes to the pair across the
            // boundary (further left), so the limit is rank + 1.
            limit = right + 1;
            right = tables.split(right).left;
            if (right + 1 == limit) {
                limit = left;
                left = tables.split(left).right;
                if (left == limit) return true;
            }
        }
    }
}

class Bitfield {
public:
    explicit Bitfield(std::size_t bits) : words_((bits + 63) / 64, ~std::uint64_t{0}) {}
    bool is_set(std::size_t i) const { return ((words_[i / 64] >> (i % 64)) & 1u) != 0; }
    void clear(std::size_t i) { words_[i / 64] &= ~(std::uint64_t{1} << (i % 64)); }

private:
    std::vector<std::uint64_t> words_;
};

}  // namespace

std::size_t backtrack_encode(const Vocabulary& vocabulary, const BacktrackTables& tables, const std::uint8_t* piece,
                             std::size_t n, std::vector<Rank>& out) {
    const std::size_t base = out.size();
    Bitfield reachable(n + 1);
    std::size_t pos = 0;
    std::size_t tried = 0;
    Rank next = n > 0 ? tables.longest_match(piece, n) : no_rank;
    while (next != no_rank) {
        Rank token = next;
        const Rank last = out.size() > base ? out.back() : no_rank;
        for (;;) {
            ++tried;
            const std::size_t end = pos + vocabulary.token_length(token);
            if (reachable.is_set(end) && (last == no_rank || compatible(vocabulary, tables, last, token))) {
                out.push_back(token);
                pos = end;
                next = pos < n ? tables.longest_match(piece + pos, n - pos) : no_rank;
                break;
            }
            const Rank shorter = tables.next_prefix(token);
            if (shorter != no_rank) {
                token = shorter;
                continue;
            }
            // No token fits at `pos`: it is a dead end. Retry the previous
            // token with its shorter prefixes.
            TM_ASSERT(last != no_rank);
            reachable.clear(pos);
            out.pop_back();
            pos -= vocabulary.token_length(last);
            next = last;
            break;
        }
    }
    TM_ASSERT(pos == n);
    return tried;
}

}  // namespace tokenmeter::bpe
