#include "tokenmeter/jws.hpp"

#include <utility>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/limits.hpp"

namespace tokenmeter {

std::optional<JwsSegments> split_compact(std::string_view jws) {
    const std::size_t first = jws.find('.');
    if (first == std::string_view::npos) return std::nullopt;
    const std::size_t second = jws.find('.', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    if (jws.find('.', second + 1) != std::string_view::npos) return std::nullopt;
    return JwsSegments{jws.substr(0, first), jws.substr(first + 1, second - first - 1), jws.substr(second + 1)};
}

std::string sign_compact(std::string_view header_json, std::string_view payload, const SigningKey& key) {
    std::string jws = base64url_encode(header_json);
    jws += '.';
    jws += base64url_encode(payload);
    const auto signature = key.sign(jws);
    jws += '.';
    jws += base64url_encode(signature.data(), signature.size());
    return jws;
}

Result<CompactJws, Error> verify_compact(std::string_view jws, const PublicKey& key) {
    TM_ASSERT(crypto_ready());
    if (jws.size() > limits::receipt_bytes_max) {
        return unexpected(make_error("jws_too_large", "a receipt is at most " + std::to_string(limits::receipt_bytes_max) + " bytes"));
    }
    auto segments = split_compact(jws);
    if (!segments) return unexpected(make_error("jws_malformed", "a compact JWS has three dot-separated parts"));
    auto header = base64url_decode(segments->header);
    auto payload = base64url_decode(segments->payload);
    auto signature = base64url_decode(segments->signature);
    if (!header || !payload || !signature) return unexpected(make_error("jws_malformed", "a part is not strict base64url"));
    const std::size_t signed_bytes = segments->header.size() + 1 + segments->payload.size();
    if (!ed25519_verify(jws.substr(0, signed_bytes), *signature, key)) {
        return unexpected(make_error("signature_invalid", "the signature does not verify"));
    }
    return CompactJws{std::move(header).value(), std::move(payload).value()};
}

}  // namespace tokenmeter
