#include "router/path.hpp"

#include <gtest/gtest.h>

namespace sentinel::router {
namespace {

std::string norm(std::string_view in, path_status expected) {
    std::string out;
    EXPECT_EQ(normalize_path(in, out), expected) << in;
    return expected == path_status::normalized ? out : std::string(in);
}

TEST(NormalizePath, CleanPathsUntouched) {
    EXPECT_EQ(norm("/", path_status::clean), "/");
    EXPECT_EQ(norm("/a/b.c/d", path_status::clean), "/a/b.c/d");
    EXPECT_EQ(norm("/a/.hidden", path_status::clean), "/a/.hidden");
    EXPECT_EQ(norm("/a/...", path_status::clean), "/a/...");
    EXPECT_EQ(norm("/a/%41", path_status::clean), "/a/%41");
}

TEST(NormalizePath, DotSegmentsRemoved) {
    EXPECT_EQ(norm("/public/../admin", path_status::normalized), "/admin");
    EXPECT_EQ(norm("/a/./b", path_status::normalized), "/a/b");
    EXPECT_EQ(norm("/a/b/..", path_status::normalized), "/a/");
    EXPECT_EQ(norm("/a/.", path_status::normalized), "/a/");
    EXPECT_EQ(norm("/a/..", path_status::normalized), "/");
    EXPECT_EQ(norm("/a/b/../../c", path_status::normalized), "/c");
}

TEST(NormalizePath, InvalidPaths) {
    std::string out;
    EXPECT_EQ(normalize_path("/..", out), path_status::invalid);
    EXPECT_EQ(normalize_path("/a/../../etc/passwd", out), path_status::invalid);
    EXPECT_EQ(normalize_path("/a/%2e%2e/admin", out), path_status::invalid);
    EXPECT_EQ(normalize_path("/a/.%2E/admin", out), path_status::invalid);
    EXPECT_EQ(normalize_path("/a/%2e/b", out), path_status::invalid);
}

}  // namespace
}  // namespace sentinel::router
