// A built web app served from a directory (`tokenmeter serve --web-root`).
//
// Only regular files under the root are served: a path with "..", a hidden
// segment, a backslash or a control character is not looked up, and every
// segment is opened relative to its parent without following symlinks, so a
// link planted in the root cannot expose a file outside it. Types come from a
// fixed table (unknown ones are application/octet-stream, never guessed by
// the browser: the server sends nosniff); a precompressed `.br` or `.gz`
// sibling is sent to a client that accepts it; content-hashed assets (Vite's
// `assets/name-HASH.ext`) are cached for a year, everything else revalidates
// by ETag.
#pragma once

#include <memory>
#include <string>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace tokenmeter::http {

class StaticFiles {
public:
    // Opens the root directory once; errors name the directory.
    static Result<std::unique_ptr<StaticFiles>, Error> open(const std::string& root);
    ~StaticFiles();
    StaticFiles(const StaticFiles&) = delete;
    StaticFiles& operator=(const StaticFiles&) = delete;

    // Answers a GET or HEAD with the file the path names; false when there
    // is none (the caller answers 404).
    bool serve(const httplib::Request& request, httplib::Response& response) const;

private:
    explicit StaticFiles(int root_fd) : root_fd_(root_fd) {}
    int root_fd_;
};

// The Content-Type served for a file name (by its extension).
const char* static_content_type(const std::string& name);

}  // namespace tokenmeter::http
