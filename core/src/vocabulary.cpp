#include "vocabulary.hpp"

#include <bit>

#include "tokenmeter/assert.hpp"

namespace tokenmeter::bpe {

namespace {

// A bounds-checked little-endian reader over the asset.
class Reader {
public:
    explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

    bool take(std::size_t n, std::span<const std::uint8_t>& out) {
        if (n > bytes_.size() - pos_) return false;
        out = bytes_.subspan(pos_, n);
        pos_ += n;
        return true;
    }
    bool u8(std::uint32_t& out) {
        std::span<const std::uint8_t> b;
        if (!take(1, b)) return false;
        out = b[0];
        return true;
    }
    bool u16(std::uint32_t& out) {
        std::span<const std::uint8_t> b;
        if (!take(2, b)) return false;
        out = static_cast<std::uint32_t>(b[0]) | (static_cast<std::uint32_t>(b[1]) << 8);
        return true;
    }
    bool u32(std::uint32_t& out) {
        std::span<const std::uint8_t> b;
        if (!take(4, b)) return false;
        out = static_cast<std::uint32_t>(b[0]) | (static_cast<std::uint32_t>(b[1]) << 8) |
              (static_cast<std::uint32_t>(b[2]) << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
        return true;
    }
    bool at_end() const { return pos_ == bytes_.size(); }

private:
    std::span<const std::uint8_t> bytes_;
    std::size_t pos_ = 0;
};

Error invalid(std::string what) {
    return make_error("encoding_asset_invalid", "the encoding asset is malformed: " + what);
}

constexpr std::uint8_t magic[8] = {'T', 'M', 'B', 'P', 'E', 0, 0, 1};

}  // namespace

Result<Vocabulary, Error> Vocabulary::parse(std::span<const std::uint8_t> asset) {
    Reader reader(asset);
    std::span<const std::uint8_t> head;
    if (!reader.take(sizeof magic, head) || std::memcmp(head.data(), magic, sizeof magic) != 0) {
        return unexpected(invalid("wrong magic or format version"));
    }
    std::uint32_t pattern = 0, name_length = 0, reserved = 0, count = 0, blob_bytes = 0, special_count = 0;
    if (!reader.u8(pattern) || !reader.u8(name_length) || !reader.u16(reserved) || !reader.u32(count) ||
        !reader.u32(blob_bytes) || !reader.u32(special_count)) {
        return unexpected(invalid("truncated header"));
    }
    if (pattern > 1) return unexpected(invalid("unknown pattern"));
    // 256 single bytes at least, and a bound on what the tables may take.
    if (count < 256 || count >= rank_count_max) return unexpected(invalid("token count out of range"));
    Vocabulary vocabulary;
    vocabulary.pattern_ = static_cast<PatternKind>(pattern);
    std::span<const std::uint8_t> name, lengths, blob;
    if (!reader.take(name_length, name) || !reader.take(count, lengths) || !reader.take(blob_bytes, blob)) {
        return unexpected(invalid("truncated body"));
    }
    vocabulary.name_.assign(name.begin(), name.end());
    vocabulary.offsets_.resize(std::size_t{count} + 1);
    std::uint64_t offset = 0;
    for (std::uint32_t rank = 0; rank < count; ++rank) {
        if (lengths[rank] == 0 || lengths[rank] > token_bytes_max) return unexpected(invalid("token length"));
        vocabulary.offsets_[rank] = static_cast<std::uint32_t>(offset);
        offset += lengths[rank];
    }
    if (offset != blob_bytes) return unexpected(invalid("token lengths do not add up to the blob"));
    vocabulary.offsets_[count] = static_cast<std::uint32_t>(offset);
    vocabulary.blob_.assign(blob.begin(), blob.end());
    for (std::uint32_t i = 0; i < special_count; ++i) {
        std::uint32_t id = 0, length = 0;
        std::span<const std::uint8_t> text;
        if (!reader.u32(id) || !reader.u8(length) || !reader.take(length, text)) {
            return unexpected(invalid("truncated special tokens"));
        }
        vocabulary.specials_.push_back({std::string(text.begin(), text.end()), id});
    }
    if (!reader.at_end()) return unexpected(invalid("trailing bytes"));
    vocabulary.build_index();
    for (unsigned b = 0; b < 256; ++b) {
        const auto byte = static_cast<std::uint8_t>(b);
        vocabulary.byte_ranks_[b] = vocabulary.find(&byte, 1);
        // Byte-level BPE needs every byte as a token, or some text could not
        // be encoded at all.
        if (vocabulary.byte_ranks_[b] == no_rank) return unexpected(invalid("a single byte is not a token"));
    }
    return vocabulary;
}

void Vocabulary::build_index() {
    const std::size_t capacity = std::bit_ceil(size() * 2);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    byte_pair_ranks_.assign(std::size_t{1} << 16, no_rank);
    for (Rank rank = 0; rank < size(); ++rank) {
        const std::uint8_t* bytes = token_data(rank);
        const std::size_t n = token_length(rank);
        const std::uint64_t head = head_word(bytes, n);
        const std::uint64_t h = hash_bytes(bytes, n, head);
        std::size_t i = static_cast<std::size_t>(h) & mask_;
        while (slots_[i].rank != no_rank) i = (i + 1) & mask_;
        // Tokens are distinct in the pinned assets (the tests look every
        // token up), so no duplicate check is needed at load time.
        slots_[i] = Slot{head, slot_check(h, n), rank};
        if (n == 2) byte_pair_ranks_[(static_cast<std::size_t>(bytes[0]) << 8) | bytes[1]] = rank;
    }
}

}  // namespace tokenmeter::bpe
