// The official KDL v2 test suite: every input must parse (and print to exactly the expected
// bytes) when an expected file exists, and must fail otherwise.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config/kdl/document.hpp"

namespace sentinel::kdl {
namespace {

namespace fs = std::filesystem;

const fs::path suite_dir{SENTINEL_KDL_SUITE_DIR};

std::optional<std::string> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> case_names() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(suite_dir / "input", ec))
        if (entry.path().extension() == ".kdl") names.push_back(entry.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

// Empty when the case passes, otherwise why it failed.
std::string run_case(const std::string& name) {
    const auto input = read_file(suite_dir / "input" / (name + ".kdl"));
    if (!input) return "cannot read input";
    const auto expected = read_file(suite_dir / "expected_kdl" / (name + ".kdl"));
    const auto result = parse(*input);
    if (!expected) {
        if (result.doc) return "parsed, but the case must fail; printed:\n" + print(*result.doc);
        return {};
    }
    if (!result.doc) return "parse failed: " + result.error->format(name + ".kdl");
    const std::string printed = print(*result.doc);
    if (printed != *expected) return "printed:\n" + printed + "expected:\n" + *expected;
    return {};
}

class kdl_suite : public ::testing::TestWithParam<std::string> {};

TEST_P(kdl_suite, matches_expected) {
    const std::string failure = run_case(GetParam());
    EXPECT_TRUE(failure.empty()) << GetParam() << ": " << failure;
}

INSTANTIATE_TEST_SUITE_P(v2, kdl_suite, ::testing::ValuesIn(case_names()),
                         [](const auto& info) { return info.param; });

TEST(kdl_suite_summary, all_cases_pass) {
    const auto names = case_names();
    ASSERT_EQ(names.size(), 336u) << "suite directory: " << suite_dir;
    std::size_t passed = 0;
    for (const auto& name : names)
        if (run_case(name).empty()) ++passed;
    std::printf("kdl suite: %zu of %zu passed\n", passed, names.size());
    EXPECT_EQ(passed, names.size());
}

}  // namespace
}  // namespace sentinel::kdl
