// The SDK's non-networked helpers: config-block checks and the command-line parser.
#include <gtest/gtest.h>

#include "agents/sdk/cpp/config.hpp"
#include "agents/sdk/cpp/decision.hpp"
#include "agents/sdk/cpp/handler.hpp"
#include "agents/sdk/cpp/run_agent.hpp"

namespace sentinel::agent_sdk {
namespace {

v1::ConfigNode node(const std::string& name, const std::string& path) {
    v1::ConfigNode n;
    n.set_name(name);
    n.set_path(path);
    return n;
}

TEST(config_helpers, unknown_key_message_lists_the_keys) {
    EXPECT_EQ(unknown_key_message("foo", {"a"}), "unknown key \"foo\"; expected a");
    EXPECT_EQ(unknown_key_message("foo", {"a", "b"}), "unknown key \"foo\"; expected a or b");
    EXPECT_EQ(unknown_key_message("foo", {"a", "b", "c"}), "unknown key \"foo\"; expected a, b or c");
    EXPECT_EQ(unknown_key_message("foo", {}), "unknown key \"foo\"; this agent takes no configuration");
}

TEST(config_helpers, for_each_key_reports_unknown_repeated_and_block_arguments) {
    v1::ConfigNode block = node("config", "c");
    block.add_args()->set_integer(1);
    *block.add_children() = node("a", "c.a");
    *block.add_children() = node("zzz", "c.zzz");
    *block.add_children() = node("a", "c.a[1]");
    std::vector<config_error> errors;
    std::vector<std::string> seen;
    for_each_key(block, {"a", "b"}, errors, [&](const v1::ConfigNode& n) { seen.push_back(n.path()); });
    EXPECT_EQ(seen, std::vector<std::string>{"c.a"});
    ASSERT_EQ(errors.size(), 3u);
    EXPECT_EQ(errors[0].path, "c");
    EXPECT_EQ(errors[1].path, "c.zzz");
    EXPECT_EQ(errors[1].message, "unknown key \"zzz\"; expected a or b");
    EXPECT_EQ(errors[2].path, "c.a[1]");
    EXPECT_EQ(errors[2].message, "a is given more than once");
}

TEST(config_helpers, single_values_check_shape_and_type) {
    std::vector<config_error> errors;
    auto n = node("k", "p.k");
    n.add_args()->set_string("v");
    EXPECT_EQ(string_value(n, errors), "v");
    EXPECT_FALSE(integer_value(n, errors));
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].path, "p.k");
    EXPECT_EQ(errors[0].message, "k expects an integer, got a string");

    errors.clear();
    auto b = node("flag", "p.flag");
    b.add_args()->set_boolean(true);
    EXPECT_EQ(bool_value(b, errors), true);
    b.add_args()->set_boolean(false);
    EXPECT_FALSE(bool_value(b, errors));
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].message.find("exactly one argument"), std::string::npos);

    errors.clear();
    auto annotated = node("k", "p.k");
    auto* v = annotated.add_args();
    v->set_string("x");
    v->set_type_annotation("ip");
    EXPECT_FALSE(string_value(annotated, errors));
    auto with_prop = node("k", "p.k");
    with_prop.add_args()->set_string("x");
    (*with_prop.mutable_props())["extra"].set_integer(1);
    EXPECT_FALSE(string_value(with_prop, errors));
    auto with_child = node("k", "p.k");
    with_child.add_args()->set_string("x");
    *with_child.add_children() = node("c", "p.k.c");
    EXPECT_FALSE(string_value(with_child, errors));
    EXPECT_EQ(errors.size(), 3u);
}

TEST(handler_defaults, accept_an_empty_block_reject_any_key_and_allow) {
    handler h;
    EXPECT_TRUE(h.configure(node("config", "c")).empty());
    auto block = node("config", "c");
    *block.add_children() = node("x", "c.x");
    const auto errors = h.configure(block);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message, "unknown key \"x\"; this agent takes no configuration");
    stream_context s(1, 1);
    EXPECT_TRUE(h.on_request_headers(s, {}).has_allow());
    EXPECT_TRUE(h.on_response_body(s, {}).has_allow());
    ASSERT_EQ(h.capabilities().events_size(), 1);
    EXPECT_EQ(h.capabilities().events(0), v1::REQUEST_HEADERS);
}

TEST(stream_context, user_state_is_typed_and_cancel_is_visible) {
    stream_context s(7, 3);
    EXPECT_EQ(s.stream_id(), 7u);
    EXPECT_EQ(s.state<int>(), nullptr);
    s.emplace_state<int>(42);
    ASSERT_NE(s.state<int>(), nullptr);
    EXPECT_EQ(*s.state<int>(), 42);
    EXPECT_EQ(s.state<long>(), nullptr);
    EXPECT_FALSE(s.cancelled());
    s.cancel(v1::Cancel::CLIENT_GONE);
    EXPECT_TRUE(s.cancelled());
    EXPECT_EQ(s.cancel_reason(), v1::Cancel::CLIENT_GONE);
}

TEST(decision_helpers, build_the_protobuf) {
    auto d = block(429, "slow down");
    EXPECT_EQ(d.block().status(), 429u);
    EXPECT_EQ(d.block().body(), "slow down");
    set_response_header(d, "Retry-After", "1");
    ASSERT_EQ(d.response_headers_size(), 1);
    EXPECT_EQ(d.response_headers(0).op(), v1::HeaderMutation::SET);
    EXPECT_EQ(redirect("/login").redirect().status(), 302u);
    EXPECT_TRUE(need_more_body().need_more_body());
}

struct parsed {
    bool ok;
    std::string error;
};

parsed parse(flag_set& f, std::vector<const char*> args) {
    args.insert(args.begin(), "prog");
    std::string error;
    const bool ok = f.parse(static_cast<int>(args.size()), args.data(), error);
    return {ok, error};
}

TEST(flag_set, parses_both_value_forms_switches_and_checks) {
    std::string socket, list;
    unsigned threads = 0;
    bool verbose = false;
    flag_set f;
    f.add_string("socket", "PATH", "where", socket, true);
    f.add_string("list", "FILE", "rules", list);
    f.add_unsigned("worker-threads", "N", "threads", threads, 64);
    f.add_switch("verbose", "talk", verbose);
    auto r = parse(f, {"--socket", "/run/a.sock", "--list=/etc/l", "--worker-threads", "4", "--verbose"});
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(socket, "/run/a.sock");
    EXPECT_EQ(list, "/etc/l");
    EXPECT_EQ(threads, 4u);
    EXPECT_TRUE(verbose);
    const std::string usage = f.usage("prog", "does things");
    EXPECT_NE(usage.find("usage: prog --socket PATH [options]"), std::string::npos) << usage;
    EXPECT_NE(usage.find("--worker-threads N"), std::string::npos);
}

TEST(flag_set, rejects_bad_command_lines) {
    auto check = [](std::vector<const char*> args, const std::string& want) {
        std::string socket;
        unsigned threads = 0;
        bool sw = false;
        flag_set f;
        f.add_string("socket", "PATH", "", socket, true);
        f.add_unsigned("worker-threads", "N", "", threads, 64);
        f.add_switch("sw", "", sw);
        const auto r = parse(f, std::move(args));
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.error, want);
    };
    check({}, "--socket is required");
    check({"--socket"}, "--socket needs a value (PATH)");
    check({"--socket", "a", "--nope"}, "unknown flag --nope");
    check({"--socket", "a", "--socket", "b"}, "--socket is given more than once");
    check({"--socket", "a", "--worker-threads", "65"}, "--worker-threads expects an integer from 0 to 64, got \"65\"");
    check({"--socket", "a", "--worker-threads=x"}, "--worker-threads expects an integer from 0 to 64, got \"x\"");
    check({"--socket", "a", "--sw=1"}, "--sw takes no value");
    check({"--socket", "a", "stray"}, "unexpected argument \"stray\"");
    check({"--socket="}, "--socket needs a non-empty value");
}

TEST(run_agent, command_line_errors_exit_2_and_help_exits_0) {
    auto run = [](std::vector<const char*> args) {
        args.insert(args.begin(), "agent");
        bool made = false;
        const int rc = run_agent(static_cast<int>(args.size()), args.data(),
                                 {.name = "t", .version = "1", .make_handler = [&made] {
                                      made = true;
                                      return std::make_unique<handler>();
                                  }});
        EXPECT_FALSE(made);
        return rc;
    };
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(run({}), 2);  // --socket is required
    EXPECT_EQ(run({"--socket", "/x", "--drain-timeout", "3601"}), 2);
    EXPECT_EQ(run({"--socket", "/x", "--drain-timeout", "1.2345"}), 2);
    EXPECT_EQ(run({"--socket", "/x", "--worker-threads", "-1"}), 2);
    EXPECT_EQ(run({"--help", "--bogus"}), 0);
    EXPECT_EQ(run({"--version"}), 0);
    const std::string out = ::testing::internal::GetCapturedStdout();
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(out.find("--drain-timeout S"), std::string::npos) << out;
    EXPECT_NE(out.find("(default 5)"), std::string::npos) << out;
    EXPECT_NE(out.find("t 1\n"), std::string::npos) << out;
    EXPECT_NE(err.find("--socket is required"), std::string::npos) << err;
}

TEST(run_agent, start_failure_exits_1_before_listening) {
    ::testing::internal::CaptureStderr();
    const char* args[] = {"agent", "--socket", "/nonexistent-dir/a.sock", "--drain-timeout=0.25"};
    const int rc = run_agent(4, args,
                             {.name = "t",
                              .version = "1",
                              .start = [](server&, std::string& error) {
                                  error = "rules: bad line";
                                  return false;
                              },
                              .make_handler = [] { return std::make_unique<handler>(); }});
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(rc, 1);
    EXPECT_NE(err.find("t: rules: bad line"), std::string::npos) << err;
}

}  // namespace
}  // namespace sentinel::agent_sdk
