// A `tokenmeter serve` configuration file on a PostgreSQL database, for tests
// that run real server processes.
#pragma once

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "keys/signing_key_file.hpp"
#include "test_server.hpp"
#include "tokenmeter/catalog.hpp"

namespace tokenmeter::test {

// Writes catalog, signing key and config into `dir`; returns the config path.
inline std::string write_postgres_config(const std::string& dir, const std::string& db_url,
                                         std::int64_t tokens_per_period) {
    nlohmann::json catalog = nlohmann::json::parse(std::string(default_catalog_json()));
    catalog["plans"][0]["tokens_per_period"] = tokens_per_period;
    std::ofstream(dir + "/catalog.json") << catalog.dump();
    (void)keys::generate_signing_key_file(dir + "/signing.jwk");
    const nlohmann::json config = {{"db", db_url},
                                   {"jwt_secret", jwt_secret},
                                   {"service_keys", {service_key}},
                                   {"signing_key_file", dir + "/signing.jwk"},
                                   {"catalog_file", dir + "/catalog.json"}};
    std::ofstream(dir + "/config.json") << config.dump();
    return dir + "/config.json";
}

}  // namespace tokenmeter::test
