#include "http/static_files.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <vector>

namespace tokenmeter::http {

namespace {

// The largest file served; a web app's biggest is a tokenizer file of a few MB.
constexpr std::size_t file_bytes_max = 64 << 20;
constexpr std::size_t segments_max = 16;
constexpr std::size_t segment_bytes_max = 255;
// Vite names content-hashed assets name-HASH.ext with an 8-character hash.
constexpr std::size_t content_hash_chars_min = 8;

struct ContentType {
    const char* extension;
    const char* type;
    bool compressible;
};

constexpr ContentType content_types[] = {
    {".html", "text/html; charset=utf-8", true},
    {".js", "text/javascript; charset=utf-8", true},
    {".mjs", "text/javascript; charset=utf-8", true},
    {".css", "text/css; charset=utf-8", true},
    {".json", "application/json", true},
    {".map", "application/json", true},
    {".txt", "text/plain; charset=utf-8", true},
    {".svg", "image/svg+xml", true},
    {".wasm", "application/wasm", true},
    // Tokenizer vocabularies (@tokenmeter/wasm): binary, and they compress well.
    {".tmbpe", "application/octet-stream", true},
    {".png", "image/png", false},
    {".jpg", "image/jpeg", false},
    {".jpeg", "image/jpeg", false},
    {".gif", "image/gif", false},
    {".webp", "image/webp", false},
    {".ico", "image/x-icon", false},
    {".woff2", "font/woff2", false},
};

const ContentType* content_type_of(const std::string& name) {
    for (const ContentType& entry : content_types) {
        const std::string_view extension = entry.extension;
        if (name.size() > extension.size() && name.compare(name.size() - extension.size(), extension.size(), extension) == 0) {
            return &entry;
        }
    }
    return nullptr;
}

bool is_safe_segment(const std::string& segment) {
    if (segment.empty() || segment.size() > segment_bytes_max || segment.front() == '.') return false;
    return std::none_of(segment.begin(), segment.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\' || c == ':';
    });
}

// "/a/b.js" -> {"a", "b.js"}; "/" and "/dir/" name their index.html. Nothing
// when any segment could leave the root or reach a hidden file.
std::optional<std::vector<std::string>> segments_of(const std::string& path) {
    if (path.empty() || path.front() != '/') return std::nullopt;
    std::vector<std::string> segments;
    std::size_t start = 1;
    while (start <= path.size()) {
        const std::size_t slash = std::min(path.find('/', start), path.size());
        std::string segment = path.substr(start, slash - start);
        if (segment.empty() && slash == path.size()) {
            segments.emplace_back("index.html");
        } else if (!is_safe_segment(segment) || segments.size() >= segments_max) {
            return std::nullopt;
        } else {
            segments.push_back(std::move(segment));
        }
        start = slash + 1;
    }
    return segments;
}

// Opens what `segments` name under the root, refusing a symlink at every
// step (O_NOFOLLOW on each segment, each opened relative to its parent).
int open_beneath(int root_fd, const std::vector<std::string>& segments) {
    int directory = root_fd;
    for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
        const int next = ::openat(directory, segments[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (directory != root_fd) ::close(directory);
        if (next < 0) return -1;
        directory = next;
    }
    const int fd = ::openat(directory, segments.back().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (directory != root_fd) ::close(directory);
    return fd;
}

struct FileContent {
    std::string bytes;
    std::string etag;
};

// Reads a regular file whole (bounded); nothing for a directory, a device,
// a file too large, or a read error.
std::optional<FileContent> read_regular(int fd) {
    struct stat status {};
    if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) return std::nullopt;
    const auto size = static_cast<std::size_t>(status.st_size);
    if (size > file_bytes_max) return std::nullopt;
    FileContent content;
    content.bytes.resize(size);
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::read(fd, content.bytes.data() + done, size - done);
        if (n <= 0) return std::nullopt;
        done += static_cast<std::size_t>(n);
    }
    content.etag = "\"" + std::to_string(size) + "-" + std::to_string(status.st_mtim.tv_sec) + "." +
                   std::to_string(status.st_mtim.tv_nsec) + "\"";
    return content;
}

std::optional<FileContent> read_beneath(int root_fd, const std::vector<std::string>& segments) {
    const int fd = open_beneath(root_fd, segments);
    if (fd < 0) return std::nullopt;
    auto content = read_regular(fd);
    ::close(fd);
    return content;
}

// Whether Accept-Encoding lists `coding` without refusing it (q=0).
bool accepts(const std::string& accept_encoding, std::string_view coding) {
    std::size_t start = 0;
    while (start < accept_encoding.size()) {
        const std::size_t comma = std::min(accept_encoding.find(',', start), accept_encoding.size());
        std::string_view item(accept_encoding.data() + start, comma - start);
        start = comma + 1;
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        const std::size_t semicolon = item.find(';');
        std::string_view name = item.substr(0, semicolon);
        while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
        if (name != coding) continue;
        if (semicolon == std::string_view::npos) return true;
        std::string_view parameters = item.substr(semicolon + 1);
        parameters.remove_prefix(std::min(parameters.find_first_not_of(' '), parameters.size()));
        return !(parameters == "q=0" || parameters == "q=0.0" || parameters == "q=0.00" || parameters == "q=0.000");
    }
    return false;
}

// assets/name-HASH.ext: the content decides the name, so it never changes.
bool is_content_hashed(const std::vector<std::string>& segments) {
    if (segments.size() < 2 || segments.front() != "assets") return false;
    const std::string& name = segments.back();
    const std::size_t dot = name.find('.');
    const std::size_t dash = name.rfind('-', dot);
    if (dot == std::string::npos || dash == std::string::npos || dot - dash - 1 < content_hash_chars_min) return false;
    return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(dash + 1), name.begin() + static_cast<std::ptrdiff_t>(dot),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

}  // namespace

const char* static_content_type(const std::string& name) {
    const ContentType* entry = content_type_of(name);
    return entry == nullptr ? "application/octet-stream" : entry->type;
}

Result<std::unique_ptr<StaticFiles>, Error> StaticFiles::open(const std::string& root) {
    const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return unexpected(make_error("config_invalid", "web_root " + root + " is not a directory"));
    return std::unique_ptr<StaticFiles>(new StaticFiles(fd));
}

StaticFiles::~StaticFiles() { ::close(root_fd_); }

bool StaticFiles::serve(const httplib::Request& request, httplib::Response& response) const {
    auto segments = segments_of(request.path);
    if (!segments) return false;
    auto content = read_beneath(root_fd_, *segments);
    if (!content) {
        // A directory named without its trailing slash: its index.
        segments->push_back("index.html");
        content = read_beneath(root_fd_, *segments);
        if (!content) return false;
    }
    const ContentType* type = content_type_of(segments->back());
    const char* content_type = type == nullptr ? "application/octet-stream" : type->type;
    std::string encoding;
    if (type != nullptr && type->compressible) {
        response.set_header("Vary", "Accept-Encoding");
        const std::string accept_encoding = request.get_header_value("Accept-Encoding");
        for (const char* coding : {"br", "gzip"}) {
            if (!accepts(accept_encoding, coding)) continue;
            std::vector<std::string> sibling = *segments;
            sibling.back() += std::string_view(coding) == "br" ? ".br" : ".gz";
            auto compressed = read_beneath(root_fd_, sibling);
            if (!compressed) continue;
            content = std::move(compressed);
            encoding = coding;
            break;
        }
    }
    response.set_header("Cache-Control", is_content_hashed(*segments) ? "public, max-age=31536000, immutable" : "no-cache");
    response.set_header("ETag", content->etag);
    if (!encoding.empty()) response.set_header("Content-Encoding", encoding);
    if (request.get_header_value("If-None-Match") == content->etag) {
        response.status = 304;
        return true;
    }
    response.set_content(std::move(content->bytes), content_type);
    return true;
}

}  // namespace tokenmeter::http
