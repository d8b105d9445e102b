// The config hand-over (PROTOCOL.md §3): the KDL block becomes a ConfigNode tree whose paths
// lead back to file:line:col, and an agent's errors are reported there.
#include <gtest/gtest.h>

#include "agent/agent_state.hpp"
#include "agent/config_push.hpp"
#include "config/kdl/document.hpp"

namespace agent = sentinel::agent;
namespace v1 = sentinel::agent::v1;
namespace kdl = sentinel::kdl;

namespace {

sentinel::config::agent_config with_block(const std::string& text) {
    sentinel::config::agent_config a;
    a.id = "deny";
    a.socket = "/run/x.sock";
    a.block_file = "proxy.kdl";
    auto parsed = kdl::parse(text);
    EXPECT_TRUE(parsed.doc.has_value());
    a.block = parsed.doc->nodes.at(0);
    return a;
}

}  // namespace

TEST(ConfigPush, TreeKeepsValuesAndPaths) {
    const auto a = with_block("config {\n  rule \"ip\" (cidr)\"10.0.0.0/8\" hits=3\n  rule \"path\" enabled=#true ratio=0.5\n  nothing #null\n}\n");
    const auto tree = agent::make_config_tree(a);
    const auto& root = tree.root;
    EXPECT_EQ(root.name(), "config");
    EXPECT_EQ(root.path(), "agents.agent[deny].config");
    ASSERT_EQ(root.children_size(), 3);
    const auto& r0 = root.children(0);
    EXPECT_EQ(r0.path(), "agents.agent[deny].config.rule[0]");
    EXPECT_EQ(root.children(1).path(), "agents.agent[deny].config.rule[1]");
    EXPECT_EQ(root.children(2).path(), "agents.agent[deny].config.nothing[0]");
    ASSERT_EQ(r0.args_size(), 2);
    EXPECT_EQ(r0.args(0).string(), "ip");
    EXPECT_EQ(r0.args(1).type_annotation(), "cidr");
    EXPECT_EQ(r0.props().at("hits").integer(), 3);
    EXPECT_TRUE(root.children(1).props().at("enabled").boolean());
    EXPECT_DOUBLE_EQ(root.children(1).props().at("ratio").number(), 0.5);
    EXPECT_TRUE(root.children(2).args(0).null());
    EXPECT_EQ(tree.positions.at("agents.agent[deny].config.rule[1]").line, 3u);
}

TEST(ConfigPush, ErrorsArePositioned) {
    const auto a = with_block("config {\n  status 700\n}\n");
    const auto tree = agent::make_config_tree(a);
    google::protobuf::RepeatedPtrField<v1::ConfigError> errors;
    auto* e = errors.Add();
    e->set_path("agents.agent[deny].config.status[0]");
    e->set_message("status must be 400-599");
    auto* unknown = errors.Add();
    unknown->set_path("somewhere.else");
    unknown->set_message("whole block");
    const auto lines = agent::describe_config_errors(a, tree, errors);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0], "proxy.kdl:2:3: agent \"deny\" rejected its config: status must be 400-599");
    EXPECT_EQ(lines[1], "proxy.kdl:1:1: agent \"deny\" rejected its config: whole block");
}

TEST(ConfigPush, HelloCarriesTheBlock) {
    const auto a = with_block("config { x 1; }\n");
    const auto hello = agent::make_hello(a, agent::make_config_tree(a), 3);
    ASSERT_EQ(hello.versions_size(), 1);
    EXPECT_EQ(hello.versions(0), 1u);
    EXPECT_EQ(hello.agent_id(), "deny");
    EXPECT_EQ(hello.worker(), 3u);
    EXPECT_EQ(hello.config().children(0).name(), "x");
    EXPECT_FALSE(hello.validate_only());
}

TEST(ConfigPush, UnreachableAgentIsReportedNotFatal) {
    sentinel::config::agent_config a;
    a.id = "gone";
    a.socket = "/nonexistent/dir/agent.sock";
    const auto v = agent::validate_config(a, std::chrono::milliseconds(200));
    EXPECT_FALSE(v.reached);
    EXPECT_NE(v.failure.find("connect"), std::string::npos) << v.failure;
}

TEST(ConfigPush, SettingsKeyFollowsEverySetting) {
    auto a = with_block("config { x 1; }\n");
    const std::string k = agent::settings_key(a);
    auto b = a;
    b.timeout = std::chrono::milliseconds(7);
    EXPECT_NE(agent::settings_key(b), k);
    auto c = with_block("config { x 2; }\n");
    EXPECT_NE(agent::settings_key(c), k);
    EXPECT_EQ(agent::settings_key(with_block("config { x 1; }\n")), k);
}
