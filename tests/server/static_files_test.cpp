// The web root's files as a browser needs them (issue 13): the right
// Content-Type for what a WebAssembly app loads (.wasm must be
// application/wasm for instantiateStreaming; tokenizer .tmbpe files are
// binary), and a precompressed .br or .gz sibling served with its
// Content-Encoding to a client that accepts it, always with Vary.
#include <gtest/gtest.h>

#include <fstream>

#include "http/static_files.hpp"
#include "test_server.hpp"

namespace tokenmeter {
namespace {

TEST(StaticFiles, TypesByExtension) {
    const std::pair<const char*, const char*> types[] = {
        {"tokenmeter.wasm", "application/wasm"},
        {"o200k_base.tmbpe", "application/octet-stream"},
        {"index-AbCdEf12.js", "text/javascript; charset=utf-8"},
        {"worker.mjs", "text/javascript; charset=utf-8"},
        {"index.css", "text/css; charset=utf-8"},
        {"manifest.json", "application/json"},
        {"index.js.map", "application/json"},
        {"logo.svg", "image/svg+xml"},
        {"index.html", "text/html; charset=utf-8"},
        {"font.woff2", "font/woff2"},
        {"unknown.bin", "application/octet-stream"},
    };
    for (const auto& [name, type] : types) EXPECT_STREQ(http::static_content_type(name), type) << name;
}

class WebRoot {
public:
    WebRoot() : root_(test::make_temp_dir()) { std::filesystem::create_directories(root_ + "/assets"); }
    ~WebRoot() {
        std::error_code ignored;
        std::filesystem::remove_all(root_, ignored);
    }
    void write(const std::string& path, const std::string& bytes) const {
        std::ofstream(root_ + "/" + path, std::ios::binary) << bytes;
    }
    const std::string& path() const { return root_; }

private:
    std::string root_;
};

test::TestServerOptions serving(const std::string& root, std::vector<std::string> origins = {}) {
    test::TestServerOptions options;
    options.configure = [root, origins = std::move(origins)](config::ServerConfig& c) {
        c.web_root = root;
        c.cors_origins = origins;
    };
    return options;
}

TEST(StaticFiles, WasmAndTokenizerFilesAreServedPrecompressed) {
    WebRoot root;
    const std::string wasm("\0asm\1\0\0\0", 8);
    root.write("assets/tokenmeter-AbCdEf12.wasm", wasm);
    root.write("assets/tokenmeter-AbCdEf12.wasm.br", "brotli bytes");
    root.write("assets/tokenmeter-AbCdEf12.wasm.gz", "gzip bytes");
    root.write("o200k_base.tmbpe", "ranks");
    root.write("o200k_base.tmbpe.br", "brotli ranks");
    root.write("o200k_base.tmbpe.gz", "gzip ranks");
    test::TestServer server(serving(root.path()));
    auto client = server.client();
    client.set_decompress(false);
    struct Case {
        const char* path;
        const char* accept;
        const char* type;
        const char* encoding;
        std::string body;
    };
    const Case cases[] = {
        {"/assets/tokenmeter-AbCdEf12.wasm", "", "application/wasm", "", wasm},
        {"/assets/tokenmeter-AbCdEf12.wasm", "gzip, deflate, br, zstd", "application/wasm", "br", "brotli bytes"},
        {"/assets/tokenmeter-AbCdEf12.wasm", "gzip", "application/wasm", "gzip", "gzip bytes"},
        {"/assets/tokenmeter-AbCdEf12.wasm", "br;q=0, gzip", "application/wasm", "gzip", "gzip bytes"},
        {"/o200k_base.tmbpe", "br", "application/octet-stream", "br", "brotli ranks"},
        {"/o200k_base.tmbpe", "gzip", "application/octet-stream", "gzip", "gzip ranks"},
        {"/o200k_base.tmbpe", "identity", "application/octet-stream", "", "ranks"},
    };
    for (const Case& c : cases) {
        httplib::Headers headers;
        if (*c.accept != '\0') headers.emplace("Accept-Encoding", c.accept);
        auto response = client.Get(c.path, headers);
        ASSERT_TRUE(response) << c.path << " " << c.accept;
        EXPECT_EQ(response->status, 200) << c.path << " " << c.accept;
        EXPECT_EQ(response->get_header_value("Content-Type"), c.type) << c.path << " " << c.accept;
        EXPECT_EQ(response->get_header_value("Content-Encoding"), c.encoding) << c.path << " " << c.accept;
        EXPECT_EQ(response->get_header_value("Vary"), "Accept-Encoding") << c.path << " " << c.accept;
        EXPECT_EQ(response->body, c.body) << c.path << " " << c.accept;
    }
    // The compressed files themselves are not what a client asks for by name,
    // but serving them is harmless; a sibling never changes the type.
    auto hashed = client.Get("/assets/tokenmeter-AbCdEf12.wasm", {{"Accept-Encoding", "br"}});
    ASSERT_TRUE(hashed);
    EXPECT_EQ(hashed->get_header_value("Cache-Control"), "public, max-age=31536000, immutable");
}

TEST(StaticFiles, WithCorsOnVaryNamesBothEncodingAndOrigin) {
    WebRoot root;
    root.write("o200k_base.tmbpe", "ranks");
    root.write("o200k_base.tmbpe.gz", "gzip ranks");
    test::TestServer server(serving(root.path(), {"https://app.example.com"}));
    auto client = server.client();
    client.set_decompress(false);
    auto response = client.Get("/o200k_base.tmbpe", {{"Accept-Encoding", "gzip"}, {"Origin", "https://app.example.com"}});
    ASSERT_TRUE(response);
    EXPECT_EQ(response->get_header_value("Content-Encoding"), "gzip");
    EXPECT_EQ(response->get_header_value("Vary"), "Accept-Encoding, Origin");
    EXPECT_EQ(response->get_header_value_count("Vary"), 1U);
    EXPECT_EQ(response->get_header_value("Access-Control-Allow-Origin"), "https://app.example.com");
}

}  // namespace
}  // namespace tokenmeter
