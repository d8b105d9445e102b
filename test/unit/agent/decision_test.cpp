// Decision checks and header-edit merging (PROTOCOL.md §6).
#include <gtest/gtest.h>

#include "agent/decision.hpp"

namespace agent = sentinel::agent;
namespace v1 = sentinel::agent::v1;
using agent::decision_point;

namespace {

v1::HeaderMutation mutation(v1::HeaderMutation::Op op, std::string name, std::string value = {}) {
    v1::HeaderMutation m;
    m.set_op(op);
    m.set_name(std::move(name));
    m.set_value(std::move(value));
    return m;
}

v1::Decision allow() {
    v1::Decision d;
    d.set_allow(true);
    return d;
}

}  // namespace

TEST(Decision, NeedsAnAction) {
    v1::Decision d;
    EXPECT_TRUE(agent::check_decision(d, decision_point::request_headers, true).has_value());
    EXPECT_FALSE(agent::check_decision(allow(), decision_point::request_headers, false).has_value());
}

TEST(Decision, NeedMoreBodyOnlyWhenMoreBodyCanCome) {
    v1::Decision d;
    d.set_need_more_body(true);
    EXPECT_FALSE(agent::check_decision(d, decision_point::request_headers, true).has_value());
    EXPECT_TRUE(agent::check_decision(d, decision_point::request_headers, false).has_value());
    EXPECT_TRUE(agent::check_decision(d, decision_point::request_body, false).has_value());
}

TEST(Decision, BlockAndRedirectStatusesAreBounded) {
    v1::Decision d;
    d.mutable_block()->set_status(200);
    EXPECT_TRUE(agent::check_decision(d, decision_point::request_headers, false).has_value());
    d.mutable_block()->set_status(0);
    EXPECT_FALSE(agent::check_decision(d, decision_point::request_headers, false).has_value());
    EXPECT_EQ(agent::block_status(d.block()), 403);
    d.mutable_block()->add_headers()->set_name("Content-Length");
    EXPECT_TRUE(agent::check_decision(d, decision_point::request_headers, false).has_value());

    v1::Decision r;
    r.mutable_redirect()->set_location("https://example.com/");
    EXPECT_FALSE(agent::check_decision(r, decision_point::request_headers, false).has_value());
    EXPECT_EQ(agent::redirect_status(r.redirect()), 302);
    r.mutable_redirect()->set_status(300);
    EXPECT_TRUE(agent::check_decision(r, decision_point::request_headers, false).has_value());
    r.mutable_redirect()->set_status(308);
    r.mutable_redirect()->set_location("/a\r\nSet-Cookie: x");
    EXPECT_TRUE(agent::check_decision(r, decision_point::request_headers, false).has_value());
}

TEST(Decision, MutationsMustBeSafe) {
    auto with = [](v1::HeaderMutation m) {
        v1::Decision d = allow();
        *d.add_request_headers() = std::move(m);
        return agent::check_decision(d, decision_point::request_headers, false);
    };
    EXPECT_FALSE(with(mutation(v1::HeaderMutation::SET, "X-User", "alice")).has_value());
    EXPECT_TRUE(with(mutation(v1::HeaderMutation::SET, "X User", "a")).has_value());
    EXPECT_TRUE(with(mutation(v1::HeaderMutation::SET, "X-A", "a\r\nX-B: b")).has_value());
    EXPECT_TRUE(with(mutation(v1::HeaderMutation::ADD, "X-A", std::string("a\0b", 3))).has_value());
    for (const char* owned : {"Host", "Content-Length", "Transfer-Encoding", "Connection", "upgrade", "TE"})
        EXPECT_TRUE(with(mutation(v1::HeaderMutation::REMOVE, owned)).has_value()) << owned;
}

TEST(Decision, RequestMutationsOnlyBeforeTheRequestLeft) {
    v1::Decision d = allow();
    *d.add_request_headers() = mutation(v1::HeaderMutation::SET, "X-A", "1");
    EXPECT_FALSE(agent::check_decision(d, decision_point::request_body, false).has_value());
    EXPECT_TRUE(agent::check_decision(d, decision_point::response_headers, false).has_value());
}

TEST(Decision, BodyReplacementOnlyOnBodyEvents) {
    v1::Decision d = allow();
    d.set_replace_body("x");
    EXPECT_TRUE(agent::check_decision(d, decision_point::request_headers, false).has_value());
    EXPECT_FALSE(agent::check_decision(d, decision_point::request_body, false).has_value());
}

TEST(HeaderEdits, ApplyInOrder) {
    agent::header_edits e;
    e.apply(mutation(v1::HeaderMutation::ADD, "X-A", "1"));
    e.apply(mutation(v1::HeaderMutation::ADD, "X-A", "2"));
    EXPECT_FALSE(e.drops("x-a"));
    ASSERT_EQ(e.add.size(), 2u);
    e.apply(mutation(v1::HeaderMutation::SET, "x-a", "3"));  // replaces both, and any received
    EXPECT_TRUE(e.drops("X-A"));
    ASSERT_EQ(e.add.size(), 1u);
    EXPECT_EQ(e.add[0].second, "3");
    e.apply(mutation(v1::HeaderMutation::REMOVE, "X-A"));
    EXPECT_TRUE(e.add.empty());
    EXPECT_TRUE(e.drops("x-a"));
    e.apply(mutation(v1::HeaderMutation::ADD, "X-A", "4"));  // a later ADD after REMOVE stays
    ASSERT_EQ(e.add.size(), 1u);
    EXPECT_EQ(e.drop.size(), 1u);
}

TEST(Decision, WebSocketFramesAreOnlyAllowedOrBlocked) {
    v1::Decision d = allow();
    d.set_replace_body("new payload");
    EXPECT_FALSE(agent::check_decision(d, decision_point::websocket_frame, false).has_value());
    v1::Decision b;
    b.mutable_block()->set_status(403);
    EXPECT_FALSE(agent::check_decision(b, decision_point::websocket_frame, false).has_value());
    v1::Decision r;
    r.mutable_redirect()->set_location("/x");
    EXPECT_TRUE(agent::check_decision(r, decision_point::websocket_frame, false).has_value());
    v1::Decision n;
    n.set_need_more_body(true);
    EXPECT_TRUE(agent::check_decision(n, decision_point::websocket_frame, true).has_value());
    v1::Decision m = allow();
    *m.add_response_headers() = mutation(v1::HeaderMutation::SET, "X-A", "1");
    EXPECT_TRUE(agent::check_decision(m, decision_point::websocket_frame, false).has_value());
}
