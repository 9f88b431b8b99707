// Shared helpers of the tokenizer suites.
#pragma once

#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenmeter/embedded_encodings.hpp"
#include "tokenmeter/tokenizer.hpp"

namespace tokenmeter::test {

inline std::string read_tokenizer_vector_file(const std::string& name) {
    std::ifstream file(std::string(TM_TOKENIZER_VECTORS_DIR) + "/" + name, std::ios::binary);
    std::stringstream buffer;
    buffer << file.rdbuf();
    return buffer.str();
}

// A committed vector file under tests/vectors/.
inline std::string read_source_vector_file(const std::string& name) {
    std::ifstream file(std::string(TM_VECTORS_DIR) + "/" + name, std::ios::binary);
    std::stringstream buffer;
    buffer << file.rdbuf();
    return buffer.str();
}

inline nlohmann::json read_tokenizer_vectors(const std::string& name) {
    return nlohmann::json::parse(read_tokenizer_vector_file(name));
}

inline const Encoding& o200k() { return embedded_encoding(TokenizerKind::o200k_base); }
inline const Encoding& cl100k() { return embedded_encoding(TokenizerKind::cl100k_base); }

// Appends the UTF-8 form of a code point.
inline void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

}  // namespace tokenmeter::test
