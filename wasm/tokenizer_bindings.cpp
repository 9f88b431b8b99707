// Embind bindings of the tokenizer (issue 3), kept apart from bindings.cpp.
//
// The encodings are not compiled in: the SDK fetches an asset
// (build/wasm/tokenizer/<name>.tmbpe) when a model first needs it and hands
// the bytes to loadEncoding. Counting then names a tokenizer as the catalog
// does ("o200k_base", "cl100k_base" or "estimate"); encodingForTokenizer says
// which asset a tokenizer needs (the Claude estimate counts with o200k_base).
//
// Text crosses as bytes: pass `new TextEncoder().encode(text)` (a
// Uint8Array), which is one copy into wasm memory and turns lone surrogates
// into U+FFFD exactly as tiktoken's JavaScript and Python wrappers do. A JS
// string also works, but Emscripten 3.1.6's encoder pairs a lone surrogate
// with whatever unit follows it, silently changing the text: the SDK should
// always pass TextEncoder bytes.
//
// Every function returns a plain object: {ok: true, ...} or
// {ok: false, code, message}.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "loaded_encodings.hpp"
#include "tokenmeter/token_count.hpp"
#include "tokenmeter/tokenizer.hpp"

namespace {

using emscripten::val;
using namespace tokenmeter;

// The loaded encodings, by TokenizerKind (o200k_base, cl100k_base).
std::array<std::optional<Encoding>, 2>& encoding_slots() {
    static std::array<std::optional<Encoding>, 2> encodings;
    return encodings;
}

val failure(const Error& error) {
    val out = val::object();
    out.set("ok", false);
    out.set("code", error.code);
    out.set("message", error.message);
    return out;
}

std::optional<TokenizerKind> tokenizer_named(const std::string& name) { return tokenizer_kind_from_string(name); }

// The encoding a tokenizer counts with, if its asset has been loaded.
Result<const Encoding*, Error> encoding_for(const std::string& tokenizer) {
    const auto kind = tokenizer_named(tokenizer);
    if (!kind) return unexpected(make_error("unknown_tokenizer", "unknown tokenizer \"" + tokenizer + "\""));
    return wasm::loaded_encodings().encoding(encoding_kind_for(*kind));
}

val load_encoding(const std::string& asset) {
    auto encoding = Encoding::load({reinterpret_cast<const std::uint8_t*>(asset.data()), asset.size()});
    if (!encoding) return failure(encoding.error());
    const std::string name(encoding->name());
    encoding_slots()[static_cast<std::size_t>(encoding->kind())] = std::move(encoding).value();
    val out = val::object();
    out.set("ok", true);
    out.set("name", name);
    return out;
}

bool encoding_loaded(const std::string& name) {
    const auto kind = tokenizer_named(name);
    return kind && *kind != TokenizerKind::estimate && encoding_slots()[static_cast<std::size_t>(*kind)].has_value();
}

std::string encoding_for_tokenizer(const std::string& tokenizer) {
    const auto kind = tokenizer_named(tokenizer);
    return kind ? std::string(to_string(encoding_kind_for(*kind))) : std::string();
}

val count_result(const Result<TokenCount, Error>& counted) {
    if (!counted) return failure(counted.error());
    val out = val::object();
    out.set("ok", true);
    out.set("tokens", static_cast<double>(counted->tokens));
    out.set("exact", counted->exact);
    return out;
}

val count_text(const std::string& tokenizer, const std::string& text) {
    auto encoding = encoding_for(tokenizer);
    if (!encoding) return failure(encoding.error());
    return count_result(count_text_tokens(**encoding, *tokenizer_named(tokenizer), text));
}

val count_chat(const std::string& tokenizer, const std::string& messages_json) {
    auto encoding = encoding_for(tokenizer);
    if (!encoding) return failure(encoding.error());
    auto messages = parse_chat_messages(messages_json);
    if (!messages) return failure(messages.error());
    return count_result(count_chat_tokens(**encoding, *tokenizer_named(tokenizer), *messages));
}

val encode_ordinary(const std::string& encoding_name, const std::string& text) {
    const auto kind = tokenizer_named(encoding_name);
    if (!kind || *kind == TokenizerKind::estimate) {
        return failure(make_error("unknown_encoding", "unknown encoding \"" + encoding_name + "\""));
    }
    auto encoding = encoding_for(encoding_name);
    if (!encoding) return failure(encoding.error());
    auto ids = (*encoding)->encode_ordinary(text);
    if (!ids) return failure(ids.error());
    val out = val::object();
    out.set("ok", true);
    // A copy, so the array stays valid when wasm memory grows.
    out.set("ids", val(emscripten::typed_memory_view(ids->size(), ids->data())).call<val>("slice"));
    return out;
}

// The text of token ids, as UTF-8 bytes (a cut in the middle of a character
// is the caller's to handle: JavaScript's TextDecoder replaces it). The ids
// come as numbers the SDK has checked to be integers in [0, 2^32).
val decode_tokens(const std::string& encoding_name, const val& ids) {
    const auto kind = tokenizer_named(encoding_name);
    if (!kind || *kind == TokenizerKind::estimate) {
        return failure(make_error("unknown_encoding", "unknown encoding \"" + encoding_name + "\""));
    }
    auto encoding = encoding_for(encoding_name);
    if (!encoding) return failure(encoding.error());
    const std::vector<TokenId> tokens = emscripten::convertJSArrayToNumberVector<TokenId>(ids);
    auto bytes = (*encoding)->decode_bytes(tokens);
    if (!bytes) return failure(bytes.error());
    val out = val::object();
    out.set("ok", true);
    out.set("bytes", val(emscripten::typed_memory_view(bytes->size(), reinterpret_cast<const std::uint8_t*>(bytes->data())))
                         .call<val>("slice"));
    return out;
}

}  // namespace

namespace {

class LoadedEncodings final : public EncodingSource {
public:
    Result<const Encoding*, Error> encoding(TokenizerKind encoding) const override {
        TM_ASSERT(encoding != TokenizerKind::estimate);
        const auto& slot = encoding_slots()[static_cast<std::size_t>(encoding)];
        if (!slot) {
            // Named as the SDK's users know it: loadTokenizer(model) loads it.
            return unexpected(make_error("encoding_not_loaded", "the " + std::string(to_string(encoding)) +
                                                                    " tokenizer is not loaded yet: await loadTokenizer(model) first"));
        }
        return &*slot;
    }
};

}  // namespace

const EncodingSource& tokenmeter::wasm::loaded_encodings() {
    static const LoadedEncodings encodings;
    return encodings;
}

EMSCRIPTEN_BINDINGS(tokenmeter_tokenizer) {
    emscripten::function("loadEncoding", &load_encoding);
    emscripten::function("encodingLoaded", &encoding_loaded);
    emscripten::function("encodingForTokenizer", &encoding_for_tokenizer);
    emscripten::function("countTextTokens", &count_text);
    emscripten::function("countChatTokens", &count_chat);
    emscripten::function("encodeOrdinary", &encode_ordinary);
    emscripten::function("decodeTokens", &decode_tokens);
}
