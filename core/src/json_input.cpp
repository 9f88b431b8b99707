#include "tokenmeter/json_input.hpp"

namespace tokenmeter::json_input {

Result<Json, Error> parse(std::string_view text) {
    Json document = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (document.is_discarded()) {
        return unexpected(make_error("malformed_json", "the body is not valid JSON"));
    }
    return document;
}

std::string path(std::string_view where, std::string_view key) {
    std::string out(where);
    if (!out.empty()) out += '.';
    out += key;
    return out;
}

std::optional<Error> refuse_unknown_fields(const Json& object,
                                           std::initializer_list<std::string_view> allowed,
                                           std::string_view where) {
    for (const auto& item : object.items()) {
        bool known = false;
        for (std::string_view name : allowed) {
            if (item.key() == name) known = true;
        }
        if (!known) {
            return make_error("unknown_field", "unknown field " + path(where, item.key()));
        }
    }
    return std::nullopt;
}

Result<std::string, Error> string_member(const Json& object, std::string_view key,
                                         std::string_view where) {
    auto found = object.find(key);
    if (found == object.end() || found->is_null()) {
        return unexpected(make_error("missing_field", "missing field " + path(where, key)));
    }
    if (!found->is_string()) {
        return unexpected(make_error("invalid_value", path(where, key) + " must be a string"));
    }
    return found->get<std::string>();
}

std::string utf8_prefix(std::string_view text, std::size_t bytes_max) {
    if (text.size() <= bytes_max) return std::string(text);
    std::size_t end = bytes_max;
    // Back to the first byte of the character that crosses the bound.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return std::string(text.substr(0, end));
}

Result<std::int64_t, Error> count_value(const Json& value, std::string_view what, std::int64_t max) {
    const std::string range = " must be an integer from 0 to " + std::to_string(max);
    if (value.is_number_unsigned()) {
        auto number = value.get<std::uint64_t>();
        if (number > static_cast<std::uint64_t>(max)) {
            return unexpected(make_error("invalid_value", std::string(what) + range));
        }
        return static_cast<std::int64_t>(number);
    }
    if (value.is_number_integer()) {  // signed, so negative
        return unexpected(make_error("invalid_value", std::string(what) + range));
    }
    return unexpected(make_error("invalid_value", std::string(what) + range));
}

Result<std::int64_t, Error> count_member(const Json& object, std::string_view key,
                                         std::string_view where, std::int64_t max) {
    auto found = object.find(key);
    if (found == object.end() || found->is_null()) {
        return unexpected(make_error("missing_field", "missing field " + path(where, key)));
    }
    return count_value(*found, path(where, key), max);
}

Result<std::int64_t, Error> optional_count_member(const Json& object, std::string_view key,
                                                  std::string_view where, std::int64_t max,
                                                  std::int64_t fallback) {
    auto found = object.find(key);
    if (found == object.end() || found->is_null()) return fallback;
    return count_value(*found, path(where, key), max);
}

}  // namespace tokenmeter::json_input
