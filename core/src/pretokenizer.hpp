// Pre-tokenization: splitting text into the pieces tiktoken's regex finds
// (internal to the core).
//
// tiktoken splits text with `fancy_regex` and one pattern per encoding. This
// is a hand-written scanner that reproduces both patterns exactly, with Rust
// regex semantics:
//   * alternation is leftmost-first (ordered), quantifiers are greedy and
//     backtrack as a backtracking engine does;
//   * \s is the Unicode White_Space property (so U+0085 is space, U+FEFF and
//     U+180E are not), and \r, \n are just those two characters;
//   * (?i:'s|'t|...) uses simple case folding, so 'ſ (U+017F) is a contraction;
//   * `\s+(?!\S)`: a whitespace run followed by a non-space gives up its last
//     character, which then starts the next piece.
// Each alternative is resolved by direct scanning, so the time per piece is
// linear in the piece (each alternative rescans at most a constant number of
// times) and there is no backtracking blow-up on long whitespace runs.
//
// The text must be valid UTF-8 (checked by the caller).
//
// cl100k_base:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// o200k_base (U = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], W = [\p{Ll}\p{Lm}\p{Lo}\p{M}],
// C = (?i:'s|'t|'re|'ve|'m|'ll|'d)):
//   [^\r\n\p{L}\p{N}]?U*W+C?|[^\r\n\p{L}\p{N}]?U+W*C?|\p{N}{1,3}
//   | ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenmeter/assert.hpp"
#include "unicode_class.hpp"
#include "utf8.hpp"

namespace tokenmeter::pretokenizer {

enum class Pattern : std::uint8_t { o200k = 0, cl100k = 1 };

namespace detail {

inline constexpr std::size_t none = static_cast<std::size_t>(-1);

// Sets of classes (bit i = class value i, see unicode_class.hpp).
constexpr std::uint16_t bit(unsigned c) { return static_cast<std::uint16_t>(1u << c); }
inline constexpr std::uint16_t set_letter = bit(unicode::category_letter_upper) |
                                            bit(unicode::category_letter_lower) |
                                            bit(unicode::category_letter_title) |
                                            bit(unicode::category_letter_modifier) |
                                            bit(unicode::category_letter_other);
inline constexpr std::uint16_t set_number = bit(unicode::category_number);
inline constexpr std::uint16_t set_space = bit(unicode::category_other | unicode::white_space_bit);
// o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}].
inline constexpr std::uint16_t set_upper = bit(unicode::category_letter_upper) |
                                           bit(unicode::category_letter_title) |
                                           bit(unicode::category_letter_modifier) |
                                           bit(unicode::category_letter_other) |
                                           bit(unicode::category_mark);
inline constexpr std::uint16_t set_lower = bit(unicode::category_letter_lower) |
                                           bit(unicode::category_letter_modifier) |
                                           bit(unicode::category_letter_other) |
                                           bit(unicode::category_mark);
// [^\s\p{L}\p{N}]: neither space, letter nor number (marks included).
inline constexpr std::uint16_t set_punct = bit(unicode::category_other) | bit(unicode::category_mark);
// [^\r\n\p{L}\p{N}] apart from the \r\n test, which is done on the byte.
inline constexpr std::uint16_t set_prefix = set_punct | set_space;

inline bool in(std::uint16_t set, std::uint8_t cls) { return ((static_cast<unsigned>(set) >> cls) & 1u) != 0; }

// Classes of the ASCII characters, so the common case needs no decoding.
struct AsciiClasses {
    std::uint8_t cls[128];
};

constexpr AsciiClasses make_ascii_classes() {
    AsciiClasses table{};
    for (unsigned c = 0; c < 128; ++c) {
        std::uint8_t value = unicode::category_other;
        if (c >= 'A' && c <= 'Z') value = unicode::category_letter_upper;
        if (c >= 'a' && c <= 'z') value = unicode::category_letter_lower;
        if (c >= '0' && c <= '9') value = unicode::category_number;
        if ((c >= 0x09 && c <= 0x0D) || c == ' ') value = unicode::category_other | unicode::white_space_bit;
        table.cls[c] = value;
    }
    return table;
}

inline constexpr AsciiClasses ascii_classes = make_ascii_classes();

struct Char {
    std::uint8_t cls;
    std::uint8_t length;
};

class Scanner {
public:
    Scanner(const std::uint8_t* text, std::size_t size) : text_(text), size_(size) {}

    std::size_t size() const { return size_; }
    std::uint8_t byte(std::size_t pos) const { return text_[pos]; }

    Char at(std::size_t pos) const {
        const std::uint8_t b = text_[pos];
        if (b < 0x80) return {ascii_classes.cls[b], 1};
        const utf8::Decoded d = utf8::decode(text_ + pos);
        return {unicode::code_point_class(d.code_point), static_cast<std::uint8_t>(d.length)};
    }

    // The end of the run of characters in `set` starting at `pos`.
    std::size_t run(std::size_t pos, std::uint16_t set) const {
        while (pos < size_) {
            const Char c = at(pos);
            if (!in(set, c.cls)) break;
            pos += c.length;
        }
        return pos;
    }

    // The end of (?i:'s|'t|'re|'ve|'m|'ll|'d) at `pos`, or `none`.
    std::size_t contraction_end(std::size_t pos) const {
        if (pos >= size_ || text_[pos] != '\'' || pos + 1 >= size_) return none;
        const utf8::Decoded first = utf8::decode(text_ + pos + 1);
        const std::size_t after_first = pos + 1 + first.length;
        const char letter = unicode::contraction_letter_fold(first.code_point);
        if (letter == 's' || letter == 't' || letter == 'm' || letter == 'd') return after_first;
        if (letter != 'r' && letter != 'v' && letter != 'l') return none;
        if (after_first >= size_) return none;
        const utf8::Decoded second = utf8::decode(text_ + after_first);
        const char want = letter == 'l' ? 'l' : 'e';
        return unicode::contraction_letter_fold(second.code_point) == want ? after_first + second.length : none;
    }

    // \p{N}{1,3} at `pos` (a number).
    std::size_t digits_end(std::size_t pos) const {
        for (int i = 0; i < 3 && pos < size_; ++i) {
            const Char c = at(pos);
            if (!in(set_number, c.cls)) break;
            pos += c.length;
        }
        return pos;
    }

    // ` ?[^\s\p{L}\p{N}]+` followed by any of the bytes in `tail` (\r\n, or
    // \r\n/ for o200k), or `none`.
    std::size_t punct_end(std::size_t pos, Char c, bool slash_tail) const {
        std::size_t start = pos;
        if (text_[pos] == ' ' && pos + 1 < size_) {
            const Char next = at(pos + 1);
            if (in(set_punct, next.cls)) {
                start = pos + 1;
                c = next;
            }
        }
        if (!in(set_punct, c.cls)) return none;
        std::size_t end = run(start + c.length, set_punct);
        while (end < size_) {
            const std::uint8_t b = text_[end];
            if (b != '\r' && b != '\n' && !(slash_tail && b == '/')) break;
            ++end;
        }
        return end;
    }

    // \s*[\r\n]+|\s+(?!\S)|\s+ at `pos`, which holds a space character.
    std::size_t space_end(std::size_t pos) const {
        std::size_t end = pos;
        std::size_t last_start = pos;
        std::size_t after_last_newline = none;
        while (end < size_) {
            const Char c = at(end);
            if (!in(set_space, c.cls)) break;
            const std::uint8_t b = text_[end];
            if (b == '\r' || b == '\n') after_last_newline = end + 1;
            last_start = end;
            end += c.length;
        }
        TM_ASSERT(end > pos);
        // \s*[\r\n]+: \s* backtracks to the last newline of the run.
        if (after_last_newline != none) return after_last_newline;
        // \s+(?!\S): the whole run at the end of the text, else all but its
        // last character, if that leaves at least one.
        if (end == size_) return end;
        if (last_start > pos) return last_start;
        return end;  // \s+: a single space before a non-space
    }

    // o200k's U*W+ at `pos`: the longest upper-ish run that still leaves a
    // lower-ish character, then the lower-ish run; or `none`.
    std::size_t lower_word_end(std::size_t pos) const {
        std::size_t end = pos;
        std::size_t after_last_lower = none;
        while (end < size_) {
            const Char c = at(end);
            if (!in(set_upper, c.cls)) break;
            end += c.length;
            if (in(set_lower, c.cls)) after_last_lower = end;
        }
        if (end < size_) {
            const Char c = at(end);
            if (in(set_lower, c.cls)) return run(end + c.length, set_lower);
        }
        // W+ found nothing after the U* run: U* gives back characters until the
        // last one that is also lower-ish, which W+ then takes alone.
        return after_last_lower;
    }

    // o200k's U+W* at `pos`, or `none`.
    std::size_t upper_word_end(std::size_t pos) const {
        const std::size_t end = run(pos, set_upper);
        if (end == pos) return none;
        return run(end, set_lower);
    }

    std::size_t with_contraction(std::size_t end) const {
        const std::size_t contraction = contraction_end(end);
        return contraction == none ? end : contraction;
    }

private:
    const std::uint8_t* text_;
    std::size_t size_;
};

inline bool prefix_eligible(const Scanner& scanner, std::size_t pos, Char c) {
    const std::uint8_t b = scanner.byte(pos);
    return b != '\r' && b != '\n' && in(set_prefix, c.cls);
}

inline std::size_t cl100k_piece_end(const Scanner& s, std::size_t pos) {
    if (s.byte(pos) == '\'') {
        const std::size_t end = s.contraction_end(pos);
        if (end != none) return end;
    }
    const Char c = s.at(pos);
    if (in(set_letter, c.cls)) return s.run(pos + c.length, set_letter);
    if (prefix_eligible(s, pos, c) && pos + c.length < s.size()) {
        const Char next = s.at(pos + c.length);
        if (in(set_letter, next.cls)) return s.run(pos + c.length + next.length, set_letter);
    }
    if (in(set_number, c.cls)) return s.digits_end(pos);
    const std::size_t punct = s.punct_end(pos, c, false);
    if (punct != none) return punct;
    return s.space_end(pos);
}

inline std::size_t o200k_piece_end(const Scanner& s, std::size_t pos) {
    const Char c = s.at(pos);
    const bool prefix = prefix_eligible(s, pos, c) && pos + c.length < s.size();
    const bool wordish = in(set_upper | set_lower, c.cls);
    std::size_t end = none;
    // Alternative 1 with its optional prefix, then without; then alternative 2.
    if (prefix && (end = s.lower_word_end(pos + c.length)) != none) return s.with_contraction(end);
    if (wordish && (end = s.lower_word_end(pos)) != none) return s.with_contraction(end);
    if (prefix && (end = s.upper_word_end(pos + c.length)) != none) return s.with_contraction(end);
    if (wordish && (end = s.upper_word_end(pos)) != none) return s.with_contraction(end);
    if (in(set_number, c.cls)) return s.digits_end(pos);
    const std::size_t punct = s.punct_end(pos, c, true);
    if (punct != none) return punct;
    return s.space_end(pos);
}

}  // namespace detail

// Calls `on_piece(begin, end)` for each piece of `text`, in order. The pieces
// are non-empty and cover the text exactly.
template <Pattern pattern, typename OnPiece>
void for_each_piece(std::string_view text, OnPiece&& on_piece) {
    const detail::Scanner scanner(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t end = pattern == Pattern::o200k ? detail::o200k_piece_end(scanner, pos)
                                                          : detail::cl100k_piece_end(scanner, pos);
        TM_ASSERT(end > pos && end <= text.size());
        on_piece(pos, end);
        pos = end;
    }
}

// The pieces as lengths in bytes, for tests and diagnostics.
std::vector<std::size_t> piece_lengths(Pattern pattern, std::string_view text);

}  // namespace tokenmeter::pretokenizer
