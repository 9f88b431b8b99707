// In-process timing of the native tokenizer, for bench/run.mjs: the encoding
// load from the embedded asset, then counting FILE a few times.
//
// usage: tokenmeter_tokenizer_bench o200k_base|cl100k_base FILE [REPEAT]
// prints one JSON object: load_ms, first_ms (the first count, which also
// builds the long-piece tables if the text needs them), best_ms (the fastest
// of REPEAT counts), tokens, bytes.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "tokenmeter/embedded_encodings.hpp"

namespace {

double milliseconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    using namespace tokenmeter;
    if (argc < 3) {
        std::cerr << "usage: tokenmeter_tokenizer_bench o200k_base|cl100k_base FILE [REPEAT]\n";
        return 2;
    }
    const auto kind = tokenizer_kind_from_string(argv[1]);
    if (!kind || *kind == TokenizerKind::estimate) {
        std::cerr << "unknown encoding " << argv[1] << "\n";
        return 2;
    }
    std::ifstream file(argv[2], std::ios::binary);
    std::stringstream buffer;
    buffer << file.rdbuf();
    const std::string text = buffer.str();
    const int repeat = argc > 3 ? std::stoi(argv[3]) : 5;

    auto start = std::chrono::steady_clock::now();
    auto encoding = Encoding::load(embedded_encoding_asset(*kind));
    const double load_ms = milliseconds_since(start);
    if (!encoding) {
        std::cerr << encoding.error().message << "\n";
        return 1;
    }
    start = std::chrono::steady_clock::now();
    auto tokens = encoding->count(text);
    const double first_ms = milliseconds_since(start);
    if (!tokens) {
        std::cerr << tokens.error().message << "\n";
        return 1;
    }
    double best_ms = first_ms;
    for (int i = 0; i < repeat; ++i) {
        start = std::chrono::steady_clock::now();
        const auto again = encoding->count(text);
        const double ms = milliseconds_since(start);
        if (!again || *again != *tokens) return 1;
        if (ms < best_ms) best_ms = ms;
    }
    std::printf("{\"load_ms\":%.3f,\"first_ms\":%.3f,\"best_ms\":%.3f,\"tokens\":%lld,\"bytes\":%zu}\n", load_ms,
                first_ms, best_ms, static_cast<long long>(*tokens), text.size());
    return 0;
}
