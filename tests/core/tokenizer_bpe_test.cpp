// The two exact BPE encoders (tiktoken's merge loop and the linear
// backtracking encoder) against each other and against a plain reference
// port of tiktoken's loop, on every token and on random and hostile texts.
#include <gtest/gtest.h>

#include <thread>

#include "bpe.hpp"
#include "tokenizer_test_support.hpp"

namespace tokenmeter {
namespace {

using bpe::Rank;

bpe::Vocabulary vocabulary_of(TokenizerKind kind) {
    auto vocabulary = bpe::Vocabulary::parse(embedded_encoding_asset(kind));
    TM_ASSERT(vocabulary.has_value());
    return std::move(vocabulary).value();
}

// tiktoken's _byte_pair_merge, ported line by line from src/lib.rs for any
// length (quadratic): parts are (start, rank of merging with the next part).
std::vector<Rank> reference_merge(const bpe::Vocabulary& vocabulary, const std::string& text) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
    std::vector<std::pair<std::size_t, Rank>> parts;
    for (std::size_t i = 0; i + 1 < text.size(); ++i) parts.emplace_back(i, vocabulary.find(p + i, 2));
    parts.emplace_back(text.size() - 1, bpe::no_rank);
    parts.emplace_back(text.size(), bpe::no_rank);
    auto get_rank = [&](std::size_t i) {
        return i + 3 < parts.size() ? vocabulary.find(p + parts[i].first, parts[i + 3].first - parts[i].first)
                                    : bpe::no_rank;
    };
    for (;;) {
        Rank best = bpe::no_rank;
        std::size_t at = 0;
        for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
            if (parts[i].second < best) {
                best = parts[i].second;
                at = i;
            }
        }
        if (best == bpe::no_rank) break;
        if (at > 0) parts[at - 1].second = get_rank(at - 1);
        parts[at].second = get_rank(at);
        parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
    std::vector<Rank> out;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        out.push_back(vocabulary.find(p + parts[i].first, parts[i + 1].first - parts[i].first));
    }
    return out;
}

std::vector<Rank> backtrack(const bpe::Vocabulary& vocabulary, const bpe::BacktrackTables& tables,
                            const std::string& text) {
    std::vector<Rank> out;
    bpe::backtrack_encode(vocabulary, tables, reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), out);
    return out;
}

std::vector<Rank> merge(const bpe::Vocabulary& vocabulary, const std::string& text) {
    Rank out[bpe::merge_piece_bytes_max];
    const std::size_t n =
        bpe::merge_encode(vocabulary, reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), out);
    return {out, out + n};
}

class TokenizerBpe : public ::testing::TestWithParam<TokenizerKind> {
protected:
    TokenizerBpe() : vocabulary_(vocabulary_of(GetParam())), tables_(vocabulary_) {}

    std::string token_text(Rank rank) const {
        return {reinterpret_cast<const char*>(vocabulary_.token_data(rank)), vocabulary_.token_length(rank)};
    }
    // Random text made of whole tokens: the hardest case for boundaries.
    std::string random_token_text(std::mt19937& random, std::size_t bytes) const {
        std::string text;
        while (text.size() < bytes) text += token_text(static_cast<Rank>(random() % vocabulary_.size()));
        return text;
    }

    bpe::Vocabulary vocabulary_;
    bpe::BacktrackTables tables_;
};

TEST_P(TokenizerBpe, EveryTokenIsItsOwnEncodingByBothEncoders) {
    for (Rank rank = 0; rank < vocabulary_.size(); ++rank) {
        const std::string text = token_text(rank);
        const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
        ASSERT_EQ(vocabulary_.find(p, text.size()), rank);
        ASSERT_EQ(merge(vocabulary_, text), std::vector<Rank>{rank}) << rank;
        ASSERT_EQ(backtrack(vocabulary_, tables_, text), std::vector<Rank>{rank}) << rank;
        // The properties the backtracking encoder relies on.
        const bpe::Split split = tables_.split(rank);
        if (text.size() > 1) {
            ASSERT_LT(split.left, rank);
            ASSERT_LT(split.right, rank);
            ASSERT_EQ(token_text(split.left) + token_text(split.right), text);
            const Rank prefix = tables_.next_prefix(rank);
            ASSERT_NE(prefix, bpe::no_rank);
            ASSERT_LT(vocabulary_.token_length(prefix), text.size());
            ASSERT_EQ(text.compare(0, vocabulary_.token_length(prefix), token_text(prefix)), 0);
        }
    }
}

TEST_P(TokenizerBpe, EncodersAgreeOnRandomShortPieces) {
    std::mt19937 random(11);
    const std::string alphabet = "aaabbcde ";
    for (int round = 0; round < 20000; ++round) {
        std::string text;
        const std::size_t length = 1 + random() % bpe::merge_piece_bytes_max;
        if (round % 2 == 0) {
            for (std::size_t i = 0; i < length; ++i) text += alphabet[random() % alphabet.size()];
        } else {
            text = random_token_text(random, length).substr(0, length);
        }
        ASSERT_EQ(backtrack(vocabulary_, tables_, text), merge(vocabulary_, text)) << text;
    }
}

TEST_P(TokenizerBpe, BacktrackingEqualsTiktokensLoopOnLongTexts) {
    std::mt19937 random(12);
    for (int round = 0; round < 150; ++round) {
        const std::size_t length = 129 + random() % 1500;
        std::string text = random_token_text(random, length);
        if (round % 3 == 0) {
            text.assign(length, static_cast<char>('a' + round % 3));
        } else if (round % 3 == 1) {
            for (auto& c : text) c = static_cast<char>("ab "[random() % 3]);
        }
        ASSERT_EQ(backtrack(vocabulary_, tables_, text), reference_merge(vocabulary_, text)) << round;
    }
}

TEST_P(TokenizerBpe, AMegabytePieceTakesLinearWork) {
    // A run of letters is one piece however long, the case that makes
    // tiktoken's merge loop quadratic. The encoder's work is counted (the
    // candidate tokens it tries, each a bounded amount of work) rather than
    // timed, so a busy machine cannot fail this; `make bench` (bench/run.mjs,
    // the hostile series) has the times.
    const std::string half(1 << 19, 'a');
    const std::string whole(1 << 20, 'a');
    std::vector<Rank> half_ranks;
    std::vector<Rank> ranks;
    const std::size_t half_tried = bpe::backtrack_encode(
        vocabulary_, tables_, reinterpret_cast<const std::uint8_t*>(half.data()), half.size(), half_ranks);
    const std::size_t tried = bpe::backtrack_encode(
        vocabulary_, tables_, reinterpret_cast<const std::uint8_t*>(whole.data()), whole.size(), ranks);
    // Within the bound the encoder documents (token_bytes_max per byte)...
    EXPECT_LE(tried, bpe::token_bytes_max * whole.size());
    // ...and growing with the length, not faster: twice the text, twice the
    // tries up to the ends of the run (a quadratic encoder would try four times).
    EXPECT_GE(tried, half_tried);
    EXPECT_LE(tried, 2 * half_tried + bpe::token_bytes_max) << half_tried << " then " << tried;
    // Encoding sends pieces longer than merge_piece_bytes_max to this encoder:
    // the same ids, and they are the text.
    const Encoding& encoding = embedded_encoding(GetParam());
    const auto ids = encoding.encode_ordinary(whole);
    ASSERT_TRUE(ids.has_value());
    EXPECT_EQ(*ids, std::vector<TokenId>(ranks.begin(), ranks.end()));
    EXPECT_EQ(encoding.decode_bytes(*ids).value(), whole);
}

INSTANTIATE_TEST_SUITE_P(Encodings, TokenizerBpe,
                         ::testing::Values(TokenizerKind::o200k_base, TokenizerKind::cl100k_base),
                         [](const auto& param_info) { return std::string(to_string(param_info.param)); });

TEST(TokenizerBpeThreads, ConcurrentFirstUseOfTheLongPieceTablesAgrees) {
    // A fresh encoding, so both threads race to build the tables.
    auto encoding = Encoding::load(embedded_encoding_asset(TokenizerKind::o200k_base));
    ASSERT_TRUE(encoding.has_value());
    std::string text;
    for (int i = 0; i < 2000; ++i) text += "threadsafety";
    std::vector<TokenId> first, second;
    std::thread a([&] { first = encoding->encode_ordinary(text).value(); });
    std::thread b([&] { second = encoding->encode_ordinary(text).value(); });
    a.join();
    b.join();
    EXPECT_EQ(first, second);
    EXPECT_EQ(encoding->decode_bytes(first).value(), text);
}

}  // namespace
}  // namespace tokenmeter
