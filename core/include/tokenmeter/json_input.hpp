// Reading untrusted JSON without exceptions: one parse, then checked access.
//
// nlohmann::json is used with allow_exceptions=false and every value's type is
// checked before it is read, so the core builds with -fno-exceptions and a
// malformed document is an Error, never an abort. Codes are generic
// (malformed_json, unknown_field, missing_field, invalid_value); callers put
// them in context.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::json_input {

using Json = nlohmann::json;

// Parses a document; a syntax error or trailing garbage is malformed_json.
Result<Json, Error> parse(std::string_view text);

// Refuses any key of `object` not in `allowed`, naming it.
std::optional<Error> refuse_unknown_fields(const Json& object,
                                           std::initializer_list<std::string_view> allowed,
                                           std::string_view where);

// A required string member.
Result<std::string, Error> string_member(const Json& object, std::string_view key,
                                         std::string_view where);

// A required non-negative integer member no larger than `max`. Floats, strings,
// negative numbers and numbers past `max` are invalid_value.
Result<std::int64_t, Error> count_member(const Json& object, std::string_view key,
                                         std::string_view where, std::int64_t max);

// The same for an optional member: absent (or null) gives `fallback`.
Result<std::int64_t, Error> optional_count_member(const Json& object, std::string_view key,
                                                  std::string_view where, std::int64_t max,
                                                  std::int64_t fallback);

// A JSON value that must be a non-negative integer no larger than `max`.
Result<std::int64_t, Error> count_value(const Json& value, std::string_view what, std::int64_t max);

// A key as text for messages: "catalog.models[2].multiplier".
std::string path(std::string_view where, std::string_view key);

// The longest prefix of `text` of at most `bytes_max` bytes that does not end
// inside a UTF-8 sequence: how a message quotes a bounded part of the input.
// Messages are written into JSON and stored in text columns, which take
// UTF-8 only (nlohmann's dump() throws on half a character).
std::string utf8_prefix(std::string_view text, std::size_t bytes_max);

}  // namespace tokenmeter::json_input
