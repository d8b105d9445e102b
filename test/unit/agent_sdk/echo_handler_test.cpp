#include "agents/echo/echo_handler.hpp"

#include <gtest/gtest.h>

#include <map>

namespace sentinel::echo_agent {
namespace {

v1::ConfigNode block() {
    v1::ConfigNode n;
    n.set_name("config");
    n.set_path("agents.agent[echo].config");
    return n;
}

v1::ConfigNode* add_key(v1::ConfigNode& b, const std::string& name) {
    auto* c = b.add_children();
    c->set_name(name);
    c->set_path(b.path() + "." + name);
    return c;
}

v1::RequestHeaders sample_request() {
    v1::RequestHeaders r;
    r.set_method("POST");
    r.set_path("/api/items");
    r.set_query("page=2");
    r.set_route("api");
    r.set_request_id("req-123");
    r.mutable_connection()->set_client_address("2001:db8::7");
    for (const char* name : {"Host", "Accept", "User-Agent"}) {
        auto* h = r.add_headers();
        h->set_name(name);
        h->set_value("x");
    }
    return r;
}

// name -> value of the request mutations, which must all be SETs.
std::map<std::string, std::string> request_sets(const v1::Decision& d) {
    std::map<std::string, std::string> out;
    for (const auto& m : d.request_headers()) {
        EXPECT_EQ(m.op(), v1::HeaderMutation::SET) << m.name();
        out[m.name()] = m.value();
    }
    return out;
}

TEST(echo_handler, describes_the_request_in_request_headers) {
    echo_handler h("1.2.3");
    ASSERT_TRUE(h.configure(block()).empty());
    agent_sdk::stream_context s(1, 1);
    const auto d = h.on_request_headers(s, sample_request());
    EXPECT_TRUE(d.has_allow());
    const std::map<std::string, std::string> want{
        {"X-Echo-Agent", "1.2.3"},         {"X-Echo-Method", "POST"},        {"X-Echo-Path", "/api/items"},
        {"X-Echo-Client", "2001:db8::7"}, {"X-Echo-Route", "api"},          {"X-Echo-Request-Id", "req-123"},
        {"X-Echo-Tls", "none"},           {"X-Echo-Header-Count", "3"},
    };
    EXPECT_EQ(request_sets(d), want);  // no X-Echo-Metadata without metadata
    EXPECT_EQ(d.response_headers_size(), 0);
    ASSERT_EQ(d.metadata().count("echo.seen"), 1u);
    EXPECT_EQ(d.metadata().at("echo.seen"), "1");
}

TEST(echo_handler, reports_tls_and_sorted_metadata) {
    echo_handler h("1.2.3");
    agent_sdk::stream_context s(1, 1);
    auto r = sample_request();
    r.mutable_connection()->set_tls_version("TLSv1.3");
    (*r.mutable_metadata())["waf.score"] = "3";
    (*r.mutable_metadata())["auth.user"] = "alice";
    const auto sets = request_sets(h.on_request_headers(s, r));
    EXPECT_EQ(sets.at("X-Echo-Tls"), "TLSv1.3");
    EXPECT_EQ(sets.at("X-Echo-Metadata"), "auth.user=alice;waf.score=3");
}

TEST(echo_handler, control_characters_from_other_agents_are_encoded) {
    echo_handler h("1");
    agent_sdk::stream_context s(1, 1);
    auto r = sample_request();
    (*r.mutable_metadata())["k"] = std::string("a\r\nb\0c", 6);
    const auto sets = request_sets(h.on_request_headers(s, r));
    EXPECT_EQ(sets.at("X-Echo-Metadata"), "k=a%0D%0Ab%00c");
}

TEST(echo_handler, values_stay_within_the_proxys_field_limit) {
    echo_handler h("1");
    agent_sdk::stream_context s(1, 1);
    auto r = sample_request();
    r.set_path("/" + std::string(20000, 'a'));
    const auto sets = request_sets(h.on_request_headers(s, r));
    EXPECT_EQ(sets.at("X-Echo-Path").size(), 8190u);  // whole characters up to 8 KiB
    EXPECT_EQ(sets.at("X-Echo-Path").substr(0, 4), "/aaa");
}

TEST(echo_handler, header_prefix_and_response_header_config) {
    echo_handler h("2.0");
    auto b = block();
    add_key(b, "header-prefix")->add_args()->set_string("X-Seen-");
    add_key(b, "response-header")->add_args()->set_boolean(true);
    ASSERT_TRUE(h.configure(b).empty());
    EXPECT_EQ(h.header_prefix(), "X-Seen-");
    EXPECT_TRUE(h.response_header());
    // Capabilities stay REQUEST_HEADERS only: the response mutation rides on that decision.
    ASSERT_EQ(h.capabilities().events_size(), 1);
    EXPECT_EQ(h.capabilities().events(0), v1::REQUEST_HEADERS);
    agent_sdk::stream_context s(1, 1);
    const auto d = h.on_request_headers(s, sample_request());
    const auto sets = request_sets(d);
    EXPECT_EQ(sets.at("X-Seen-Method"), "POST");
    EXPECT_EQ(sets.count("X-Echo-Method"), 0u);
    ASSERT_EQ(d.response_headers_size(), 1);
    EXPECT_EQ(d.response_headers(0).op(), v1::HeaderMutation::SET);
    EXPECT_EQ(d.response_headers(0).name(), "X-Seen-Agent");
    EXPECT_EQ(d.response_headers(0).value(), "2.0");
}

TEST(echo_handler, rejects_unknown_keys_with_their_path) {
    echo_handler h("1");
    auto b = block();
    add_key(b, "foo")->add_args()->set_integer(1);
    const auto errors = h.configure(b);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].path, "agents.agent[echo].config.foo");
    EXPECT_EQ(errors[0].message, "unknown key \"foo\"; expected header-prefix or response-header");
}

TEST(echo_handler, rejects_bad_values) {
    for (const std::string bad : {"X Echo-", "", "X-Echo:", "X-É-"}) {
        echo_handler h("1");
        auto b = block();
        add_key(b, "header-prefix")->add_args()->set_string(bad);
        const auto errors = h.configure(b);
        ASSERT_EQ(errors.size(), 1u) << bad;
        EXPECT_EQ(errors[0].path, "agents.agent[echo].config.header-prefix");
        EXPECT_NE(errors[0].message.find("not a valid header-name prefix"), std::string::npos);
        EXPECT_EQ(h.header_prefix(), "X-Echo-");
    }
    echo_handler h("1");
    auto b = block();
    add_key(b, "response-header")->add_args()->set_string("yes");
    const auto errors = h.configure(b);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message, "response-header expects #true or #false, got a string");
}

TEST(echo_handler, valid_header_prefix) {
    EXPECT_TRUE(valid_header_prefix("X-Echo-"));
    EXPECT_TRUE(valid_header_prefix("x_"));
    EXPECT_FALSE(valid_header_prefix(""));
    EXPECT_FALSE(valid_header_prefix("X-\x7f"));
    EXPECT_FALSE(valid_header_prefix("X(Echo)"));
    EXPECT_TRUE(valid_header_prefix(std::string(200, 'x')));
    EXPECT_FALSE(valid_header_prefix(std::string(201, 'x')));
}

}  // namespace
}  // namespace sentinel::echo_agent
