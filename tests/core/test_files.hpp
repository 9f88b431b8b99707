// Reading the shared test vectors (tests/vectors/) from the native suites.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace tokenmeter::test {

inline std::string read_vector_file(const std::string& name) {
    std::ifstream file(std::string(TM_VECTORS_DIR) + "/" + name, std::ios::binary);
    std::stringstream buffer;
    buffer << file.rdbuf();
    return buffer.str();
}

inline nlohmann::json read_vector_json(const std::string& name) {
    return nlohmann::json::parse(read_vector_file(name));
}

inline std::string from_hex(const std::string& hex) {
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    return bytes;
}

}  // namespace tokenmeter::test
