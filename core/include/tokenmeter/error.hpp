// Error: what went wrong with external input, as a value.
//
// `code` is a stable snake_case identifier that callers branch on and that the
// server puts into its JSON error bodies; `message` is for people and names the
// offending field or byte.
#pragma once

#include <string>

namespace tokenmeter {

struct Error {
    std::string code;
    std::string message;
};

inline Error make_error(std::string code, std::string message) {
    return Error{std::move(code), std::move(message)};
}

}  // namespace tokenmeter
