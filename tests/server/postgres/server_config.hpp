// A `tokenmeter serve` configuration file on a PostgreSQL database, for tests
// that run real server processes.
#pragma once

#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "keys/signing_key_file.hpp"
#include "test_server.hpp"
#include "tokenmeter/catalog.hpp"

namespace tokenmeter::test {

// Writes catalog, signing key and config into `dir`; returns the config path.
// `extra` adds to (or overrides) the configuration; `avatars_per_period`, if
// set, is the free plan's avatar limit.
inline std::string write_postgres_config(const std::string& dir, const std::string& db_url,
                                         std::int64_t tokens_per_period,
                                         const nlohmann::json& extra = nlohmann::json::object(),
                                         std::optional<std::int64_t> avatars_per_period = std::nullopt) {
    nlohmann::json catalog = nlohmann::json::parse(std::string(default_catalog_json()));
    catalog["plans"][0]["tokens_per_period"] = tokens_per_period;
    if (avatars_per_period) catalog["plans"][0]["avatars_per_period"] = *avatars_per_period;
    std::ofstream(dir + "/catalog.json") << catalog.dump();
    (void)keys::generate_signing_key_file(dir + "/signing.jwk");
    nlohmann::json config = {{"db", db_url},
                             {"jwt_secret", jwt_secret},
                             {"service_keys", {service_key}},
                             {"signing_key_file", dir + "/signing.jwk"},
                             {"catalog_file", dir + "/catalog.json"}};
    config.update(extra);
    std::ofstream(dir + "/config.json") << config.dump();
    return dir + "/config.json";
}

}  // namespace tokenmeter::test
