// The schema table itself: well-formed, fully documented, fully exercised by examples/full.kdl.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "config/kdl/document.hpp"
#include "config/reference.hpp"
#include "config/schema/schema.hpp"

namespace sentinel::config {
namespace {

using schema::node_spec;

void collect(const node_spec& n, const std::string& prefix, std::vector<std::pair<std::string, const node_spec*>>& out) {
    for (const auto& c : n.children) {
        std::string path = prefix.empty() ? std::string(c.name) : prefix + "." + std::string(c.name);
        out.emplace_back(path, &c);
        collect(c, path, out);
    }
}

std::vector<std::pair<std::string, const node_spec*>> all_specs() {
    std::vector<std::pair<std::string, const node_spec*>> out;
    collect(schema::root(), "", out);
    return out;
}

TEST(Schema, EveryNodeIsWellFormed) {
    auto specs = all_specs();
    EXPECT_GT(specs.size(), 50u);
    for (const auto& [path, s] : specs) {
        SCOPED_TRACE(path);
        EXPECT_FALSE(s->doc.empty());
        for (char c : s->name) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') << "not kebab-case";
        if (s->block) {
            EXPECT_TRUE(s->enter != nullptr || s->capture != nullptr);
            EXPECT_EQ(s->apply, nullptr);
        } else {
            EXPECT_NE(s->apply, nullptr);
            EXPECT_FALSE(s->args.empty());
            EXPECT_TRUE(s->children.empty());
        }
        if (s->default_value) {
            EXPECT_EQ(s->args.size(), 1u);
            EXPECT_FALSE(s->required) << "a required key cannot have a default";
        }
        if (s->restart) {
            EXPECT_NE(s->differs, nullptr);
        }
        for (const auto& a : s->args) {
            EXPECT_FALSE(a.label.empty());
            if (a.kind == schema::value_kind::enumeration) {
                EXPECT_FALSE(a.choices.empty());
            }
        }
        std::set<std::string_view> names;
        for (const auto& c : s->children) EXPECT_TRUE(names.insert(c.name).second) << "declared twice: " << c.name;
    }
}

TEST(Schema, RestartKeys) {
    std::vector<std::string> restart;
    for (const auto& [path, s] : all_specs())
        if (s->restart) restart.push_back(path);
    EXPECT_EQ(restart, (std::vector<std::string>{"system.workers", "admin", "admin.listen"}));
}

TEST(Reference, DocumentsEveryNode) {
    std::string md = config_reference_markdown();
    for (const auto& [path, s] : all_specs()) {
        SCOPED_TRACE(path);
        EXPECT_NE(md.find("`" + std::string(s->name) + "`"), std::string::npos);
        EXPECT_NE(md.find(std::string(s->doc.substr(0, 30))), std::string::npos);
        if (s->block) {
            EXPECT_NE(md.find("## `" + path + "`"), std::string::npos);
        }
    }
    EXPECT_NE(md.find("| `graceful-shutdown` | `duration`: duration"), std::string::npos);
    EXPECT_NE(md.find("| `\"30s\"` |"), std::string::npos);
}

void collect_used(const kdl::node& n, const std::string& prefix, std::set<std::string>& out) {
    std::string path = prefix.empty() ? n.name : prefix + "." + n.name;
    out.insert(path);
    for (const auto& c : n.children) collect_used(c, path, out);
}

TEST(Examples, FullExampleUsesEverySetting) {
    std::ifstream in(std::string(SENTINEL_SOURCE_DIR) + "/examples/full.kdl");
    ASSERT_TRUE(in) << "examples/full.kdl";
    std::stringstream ss;
    ss << in.rdbuf();
    auto parsed = kdl::parse(ss.str());
    ASSERT_TRUE(parsed.doc);
    std::set<std::string> used;
    for (const auto& n : parsed.doc->nodes) collect_used(n, "", used);
    for (const auto& [path, s] : all_specs()) {
        if (path == "include") continue;  // needs a second file; covered by the loader tests
        EXPECT_TRUE(used.count(path)) << "examples/full.kdl does not use " << path;
    }
}

}  // namespace
}  // namespace sentinel::config
