#include "keys/signing_key_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <sodium.h>

#include "tokenmeter/base64url.hpp"
#include "tokenmeter/crypto.hpp"
#include "tokenmeter/ed25519.hpp"
#include "tokenmeter/json_input.hpp"

namespace tokenmeter::keys {

namespace {

Error key_error(const std::string& path, const std::string& problem) {
    return make_error("signing_key_invalid", path + ": " + problem);
}

}  // namespace

Result<std::string, Error> read_small_file(const std::string& path, std::size_t bytes_max) {
    std::ifstream file(path, std::ios::binary);
    if (!file) return unexpected(make_error("file_unreadable", "cannot read " + path + ": " + std::strerror(errno)));
    std::string content;
    char buffer[4096];
    while (file.read(buffer, sizeof buffer) || file.gcount() > 0) {
        content.append(buffer, static_cast<std::size_t>(file.gcount()));
        if (content.size() > bytes_max) {
            return unexpected(make_error("file_too_large", path + " is larger than " + std::to_string(bytes_max) + " bytes"));
        }
    }
    return content;
}

Result<std::string, Error> generate_signing_key_file(const std::string& path) {
    if (!crypto_ready()) return unexpected(make_error("crypto_unavailable", "libsodium did not initialize"));
    Seed seed{};
    randombytes_buf(seed.data(), seed.size());
    const SigningKey key = SigningKey::from_seed(seed);
    const std::string d = base64url_encode(seed.data(), seed.size());
    sodium_memzero(seed.data(), seed.size());
    const VerificationKey public_key{key.kid(), key.public_key()};
    auto jwk = nlohmann::json::parse(jwk_json(public_key));
    jwk["d"] = d;
    const std::string text = jwk.dump() + "\n";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return unexpected(make_error("file_unwritable", "cannot create " + path + ": " + std::strerror(errno)));
    }
    const auto written = ::write(fd, text.data(), text.size());
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (written != static_cast<ssize_t>(text.size()) || !synced) {
        ::unlink(path.c_str());
        return unexpected(make_error("file_unwritable", "cannot write " + path));
    }
    return jwk_json(public_key);
}

Result<SigningKey, Error> load_signing_key_file(const std::string& path) {
    auto text = read_small_file(path, 16 * 1024);
    if (!text) return unexpected(text.error());
    auto jwk = json_input::parse(*text);
    if (!jwk || !jwk->is_object()) return unexpected(key_error(path, "not a JSON object"));
    auto kty = json_input::string_member(*jwk, "kty", "");
    auto crv = json_input::string_member(*jwk, "crv", "");
    if (!kty || *kty != "OKP" || !crv || *crv != "Ed25519") return unexpected(key_error(path, "not an OKP Ed25519 JWK"));
    auto d = json_input::string_member(*jwk, "d", "");
    auto seed_bytes = d ? base64url_decode(*d) : std::nullopt;
    if (!seed_bytes || seed_bytes->size() != ed25519_seed_bytes) {
        return unexpected(key_error(path, "\"d\" must be a 32-byte base64url private key"));
    }
    if (!crypto_ready()) return unexpected(make_error("crypto_unavailable", "libsodium did not initialize"));
    Seed seed{};
    std::copy(seed_bytes->begin(), seed_bytes->end(), seed.begin());
    sodium_memzero(seed_bytes->data(), seed_bytes->size());
    SigningKey key = SigningKey::from_seed(seed);
    sodium_memzero(seed.data(), seed.size());
    if (auto x = json_input::string_member(*jwk, "x", ""); x) {
        if (*x != base64url_encode(key.public_key().bytes.data(), key.public_key().bytes.size())) {
            return unexpected(key_error(path, "\"x\" does not belong to \"d\""));
        }
    }
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
        return unexpected(key_error(path, "is readable by others; chmod 600 it"));
    }
    return key;
}

Result<std::vector<VerificationKey>, Error> load_public_keys_file(const std::string& path) {
    auto text = read_small_file(path, 64 * 1024);
    if (!text) return unexpected(text.error());
    auto keys = parse_jwks(*text);
    if (!keys) return unexpected(make_error(keys.error().code, path + ": " + keys.error().message));
    return keys;
}

}  // namespace tokenmeter::keys
