#include "http/cors.hpp"

#include <algorithm>

namespace tokenmeter::http {

namespace {

constexpr std::size_t origin_chars_max = 253 + 32;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_host_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

// A DNS name or IPv4 address (lowercased): labels of [a-z0-9-], none empty.
bool is_host_name(std::string_view host) {
    if (host.empty() || host.front() == '.' || host.back() == '.' || host.find("..") != std::string_view::npos) return false;
    return std::all_of(host.begin(), host.end(), is_host_char);
}

// "[::1]" and the like: hex digits, colons and dots in brackets.
bool is_ipv6_literal(std::string_view host) {
    if (host.size() < 4 || host.front() != '[' || host.back() != ']') return false;
    return std::all_of(host.begin() + 1, host.end() - 1,
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'; });
}

Error invalid(std::string_view text, std::string_view why) {
    return make_error("config_invalid", "cors_origins: \"" + std::string(text.substr(0, 80)) + "\" is not an origin (" +
                                            std::string(why) + "); write it as https://host or https://host:port");
}

}  // namespace

Result<std::string, Error> normalize_origin(std::string_view text) {
    if (text == "*") return std::string("*");
    if (text.size() > origin_chars_max) return unexpected(invalid(text, "too long"));
    std::string origin(text.size(), '\0');
    std::transform(text.begin(), text.end(), origin.begin(), lower);
    std::string_view scheme;
    if (origin.rfind("https://", 0) == 0) {
        scheme = "https";
    } else if (origin.rfind("http://", 0) == 0) {
        scheme = "http";
    } else {
        return unexpected(invalid(text, "the scheme must be http or https"));
    }
    const std::string_view authority = std::string_view(origin).substr(scheme.size() + 3);
    if (authority.find_first_of("/?#") != std::string_view::npos) {
        return unexpected(invalid(text, "an origin has no path, query or fragment, not even a trailing /"));
    }
    if (authority.find('@') != std::string_view::npos) return unexpected(invalid(text, "an origin has no user name"));
    // The port follows the last colon, unless that colon is inside an IPv6 literal.
    std::string_view host = authority;
    std::string_view port;
    const std::size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        const bool digits = !port.empty() && port.size() <= 5 &&
                            std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits || std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
            return unexpected(invalid(text, "the port must be a number from 1 to 65535"));
        }
        if (port.front() == '0') return unexpected(invalid(text, "the port has a leading zero"));
    }
    if (!is_host_name(host) && !is_ipv6_literal(host)) {
        return unexpected(invalid(text, host.empty() ? "it names no host" : "the host is not a DNS name or IP address"));
    }
    const bool default_port = (scheme == "https" && port == "443") || (scheme == "http" && port == "80");
    std::string normalized = std::string(scheme) + "://" + std::string(host);
    if (!port.empty() && !default_port) normalized += ":" + std::string(port);
    return normalized;
}

CorsDecision decide_cors(const CorsPolicy& policy, std::string_view origin, std::string_view method, bool requests_method) {
    CorsDecision decision;
    if (!policy.enabled()) return decision;
    decision.headers.emplace_back("Vary", "Origin");
    const bool is_preflight = method == "OPTIONS" && !origin.empty() && requests_method;
    const bool allowed = !origin.empty() && (policy.any_origin() || std::find(policy.origins.begin(), policy.origins.end(),
                                                                                origin) != policy.origins.end());
    if (is_preflight) {
        decision.preflight = true;
        decision.status = allowed ? 204 : 403;
    }
    if (!allowed) return decision;
    decision.headers.emplace_back("Access-Control-Allow-Origin", policy.any_origin() ? "*" : std::string(origin));
    if (is_preflight) {
        decision.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST");
        decision.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key");
        decision.headers.emplace_back("Access-Control-Max-Age", std::to_string(cors_max_age_seconds));
    } else {
        decision.headers.emplace_back("Access-Control-Expose-Headers", std::string(exposed_headers));
    }
    return decision;
}

}  // namespace tokenmeter::http
