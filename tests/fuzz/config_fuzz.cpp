// Fuzzes the server's config file parser (config::apply_file, --config):
// the bytes are the file, applied over the defaults, then validated as
// start-up validates them.
//
// Invariants besides "no crash": a file is a set of assignments, so applying
// it again to its own result changes nothing; and what validate() accepts
// has a listen address parse_listen reads.
#include "config/config.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tokenmeter;
    const std::string text(fuzz::text_of(data, size));
    config::ServerConfig once;
    if (config::apply_file(once, text)) return 0;
    config::ServerConfig twice = once;
    TM_ASSERT(!config::apply_file(twice, text).has_value());
    TM_ASSERT(twice == once);
    if (!config::validate(once)) {
        auto listen = config::parse_listen(once.listen);
        TM_ASSERT(listen.has_value());
        TM_ASSERT(listen->second >= 0 && listen->second <= 65535);
    }
    return 0;
}
