// `tokenmeter count`, run in-process through the command table.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"

namespace tokenmeter {
namespace {

struct Outcome {
    int code;
    std::string out;
    std::string err;
};

Outcome count(std::vector<std::string_view> args, const std::string& input = "") {
    args.insert(args.begin(), "count");
    std::istringstream in(input);
    std::ostringstream out, err;
    const int code = cli::run(args, {in, out, err});
    return {code, out.str(), err.str()};
}

std::string cookbook() {
    std::ifstream file(std::string(TM_VECTORS_DIR) + "/tokenizer/cookbook_chat.json", std::ios::binary);
    std::stringstream buffer;
    buffer << file.rdbuf();
    return nlohmann::json::parse(buffer.str()).at("messages").dump();
}

TEST(CountCommand, CountsTextFromStandardInput) {
    EXPECT_EQ(count({"--encoding", "o200k_base"}, "hello world").out, "2\n");
    EXPECT_EQ(count({"--model=gpt-4o-mini", "-"}, "hello world").out, "2\n");
    EXPECT_EQ(count({"--model", "text-embedding-3-small"}, "hello world").out, "2\n");
}

TEST(CountCommand, PrintsIds) {
    const Outcome result = count({"--model", "gpt-4o", "--ids"}, "hello world");
    EXPECT_EQ(result.code, 0);
    EXPECT_EQ(result.out, "24912 2375\n");
    EXPECT_EQ(count({"--encoding", "cl100k_base", "--ids"}, "hello world").out, "15339 1917\n");
}

TEST(CountCommand, EmptyInputIsZero) {
    const Outcome result = count({"--model", "gpt-4o"});
    EXPECT_EQ(result.code, 0);
    EXPECT_EQ(result.out, "0\n");
    EXPECT_EQ(count({"--model", "gpt-4o", "--ids"}).out, "\n");
}

TEST(CountCommand, InvalidUtf8NamesTheByteOffset) {
    const Outcome result = count({"--model", "gpt-4o"}, "caf\xC3\x28 au lait");
    EXPECT_EQ(result.code, 2);
    EXPECT_EQ(result.out, "");
    EXPECT_NE(result.err.find("invalid UTF-8"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("offset 3"), std::string::npos) << result.err;
}

TEST(CountCommand, UnknownModelOrEncodingNamesTheKnownOnes) {
    const Outcome model = count({"--model", "gpt-9"}, "x");
    EXPECT_EQ(model.code, 2);
    EXPECT_NE(model.err.find("gpt-4o-mini"), std::string::npos) << model.err;
    EXPECT_NE(model.err.find("o200k_base"), std::string::npos) << model.err;
    const Outcome encoding = count({"--encoding", "p50k_base"}, "x");
    EXPECT_EQ(encoding.code, 2);
    EXPECT_NE(encoding.err.find("cl100k_base"), std::string::npos) << encoding.err;
    EXPECT_EQ(count({"--encoding", "estimate"}, "x").code, 2);
}

TEST(CountCommand, UsageErrors) {
    EXPECT_EQ(count({}, "x").code, 2);
    EXPECT_EQ(count({"--model", "gpt-4o", "--encoding", "o200k_base"}, "x").code, 2);
    EXPECT_EQ(count({"--model"}, "x").code, 2);
    EXPECT_EQ(count({"--model", "gpt-4o", "--bogus"}, "x").code, 2);
    EXPECT_EQ(count({"--model", "gpt-4o", "--ids", "--chat"}, "[]").code, 2);
    EXPECT_EQ(count({"--model", "gpt-4o", "a", "b"}, "x").code, 2);
    EXPECT_EQ(count({"--model", "gpt-4o", "/nonexistent/file"}).code, 2);
    const Outcome help = count({"--help"});
    EXPECT_EQ(help.code, 0);
    EXPECT_NE(help.out.find("usage: tokenmeter count"), std::string::npos);
}

TEST(CountCommand, ChatCountsTheCookbookExample) {
    EXPECT_EQ(count({"--model", "gpt-4o", "--chat"}, cookbook()).out, "124\n");
    EXPECT_EQ(count({"--encoding", "cl100k_base", "--chat"}, cookbook()).out, "129\n");
    const Outcome bad = count({"--model", "gpt-4o", "--chat"}, R"([{"role":"user"}])");
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("messages[0].content"), std::string::npos) << bad.err;
}

TEST(CountCommand, ClaudeIsAnEstimateAndSaysSo) {
    const Outcome result = count({"--model", "claude-3-5-sonnet"}, "hello world");
    EXPECT_EQ(result.code, 0);
    EXPECT_EQ(result.out, "3\n");  // ceil(2 * 5 / 4)
    EXPECT_NE(result.err.find("estimate"), std::string::npos);
    EXPECT_EQ(count({"--model", "claude-3-7-sonnet", "--ids"}, "hello").code, 2);
}

TEST(CountCommand, ReadsAFile) {
    const std::string path = ::testing::TempDir() + "tokenmeter_count_input.txt";
    {
        std::ofstream file(path, std::ios::binary);
        file << "hello world";
    }
    EXPECT_EQ(count({"--model", "gpt-4o", path}).out, "2\n");
    std::remove(path.c_str());
}

}  // namespace
}  // namespace tokenmeter
