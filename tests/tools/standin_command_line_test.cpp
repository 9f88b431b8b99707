// The stand-ins' executables on bad command lines: each refusal is exit
// status 2 with a message naming the option (never an exception out of
// main, never a stand-in serving with a value it could not read), --help is
// 0, and good values still start it.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <utility>

namespace tokenmeter {
namespace {

// Runs an executable through the shell, with a time limit in case it starts
// serving when it should have refused; its status and its stdout (and its
// stderr unless `stderr_too` is false).
std::pair<int, std::string> run(const std::string& binary, const std::string& arguments, int seconds = 30,
                                bool stderr_too = true) {
    const std::string command = "timeout " + std::to_string(seconds) + " " + binary + " " + arguments +
                                (stderr_too ? " 2>&1" : " 2>/dev/null");
    FILE* pipe = ::popen(command.c_str(), "r");
    std::string output;
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    const int status = ::pclose(pipe);
    return {WEXITSTATUS(status), output};
}

bool has(const std::string& output, const std::string& part) { return output.find(part) != std::string::npos; }

struct Refusal {
    const char* arguments;
    const char* message;
};

void expect_refusals(const std::string& binary, const std::string& name, std::initializer_list<Refusal> refusals) {
    for (const Refusal& refusal : refusals) {
        const auto [status, output] = run(binary, refusal.arguments);
        EXPECT_EQ(status, 2) << refusal.arguments << "\n" << output;
        EXPECT_TRUE(has(output, name + ": " + refusal.message)) << refusal.arguments << "\n" << output;
        EXPECT_TRUE(has(output, "usage: " + name)) << refusal.arguments << "\n" << output;
        EXPECT_FALSE(has(output, "listening on")) << refusal.arguments << "\n" << output;
    }
}

TEST(StandinCommandLine, LemonSqueezyRefusesBadNumbersAndOptionsWithStatus2) {
    expect_refusals(TM_LEMONSQUEEZY_STANDIN_BINARY, "lemonsqueezy_standin",
                    {
                        {"--page-size-max abc", "--page-size-max takes a whole number from 1 to 999999999, not \"abc\""},
                        {"--page-size-max 0", "--page-size-max takes a whole number from 1 to 999999999, not \"0\""},
                        {"--page-size-max 1000000000", "--page-size-max takes a whole number from 1 to 999999999"},
                        {"--slow-ms abc", "--slow-ms takes a whole number from 0 to 999999999, not \"abc\""},
                        {"--slow-ms -5", "--slow-ms takes a whole number from 0 to 999999999, not \"-5\""},
                        {"--slow-ms 99999999999999999999", "--slow-ms takes a whole number from 0 to 999999999"},
                        {"--slow-ms ''", "--slow-ms takes a whole number from 0 to 999999999, not \"\""},
                        {"--pack-variants 7,x", "--pack-variants takes numeric ids separated by commas (7,8), not \"7,x\""},
                        {"--variant-price 7", "--variant-price takes ID=CENTS (7=4900), not \"7\""},
                        {"--bogus 1", "unknown option --bogus"},
                        {"--listen", "--listen needs a value"},
                    });
}

TEST(StandinCommandLine, OpenAIRefusesBadNumbersAndOptionsWithStatus2) {
    expect_refusals(TM_OPENAI_STANDIN_BINARY, "openai_standin",
                    {
                        {"--slow-first-byte-ms abc", "--slow-first-byte-ms takes a whole number from 0 to 999999999, not \"abc\""},
                        {"--chunk-delay-ms 1.5", "--chunk-delay-ms takes a whole number from 0 to 999999999, not \"1.5\""},
                        {"--chunk-delay-ms 1000000000", "--chunk-delay-ms takes a whole number from 0 to 999999999"},
                        {"--scenario nope", "unknown scenario nope"},
                        {"--bogus 1", "unknown option --bogus"},
                        {"--api-key", "--api-key needs a value"},
                    });
}

TEST(StandinCommandLine, HelpIsUsageOnStdoutWithStatus0) {
    for (const auto& [binary, name] : {std::pair{TM_LEMONSQUEEZY_STANDIN_BINARY, "lemonsqueezy_standin"},
                                       std::pair{TM_OPENAI_STANDIN_BINARY, "openai_standin"}}) {
        for (const char* help : {"--help", "-h", "--listen 127.0.0.1:0 --help"}) {
            const auto [status, output] = run(binary, help, 30, false);
            EXPECT_EQ(status, 0) << name << " " << help << "\n" << output;
            EXPECT_TRUE(has(output, std::string("usage: ") + name)) << name << " " << help << "\n" << output;
        }
    }
}

// Good values are taken: the stand-in starts (and the time limit's SIGTERM
// stops it).
TEST(StandinCommandLine, GoodNumbersStartTheStandins) {
    const auto [lemonsqueezy, lemonsqueezy_output] =
        run(TM_LEMONSQUEEZY_STANDIN_BINARY, "--listen 127.0.0.1:0 --page-size-max 1 --slow-ms 0", 1);
    EXPECT_TRUE(has(lemonsqueezy_output, "lemonsqueezy_standin: listening on http://127.0.0.1:")) << lemonsqueezy_output;
    const auto [openai, openai_output] =
        run(TM_OPENAI_STANDIN_BINARY, "--listen 127.0.0.1:0 --slow-first-byte-ms 999999999 --chunk-delay-ms 0", 1);
    EXPECT_TRUE(has(openai_output, "openai_standin: listening on http://127.0.0.1:")) << openai_output;
}

}  // namespace
}  // namespace tokenmeter
