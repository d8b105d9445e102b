#include "agents/denylist/denylist_handler.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace sentinel::denylist {
namespace {

v1::ConfigNode block() {
    v1::ConfigNode n;
    n.set_name("config");
    n.set_path("agents.agent[deny].config");
    return n;
}

v1::ConfigNode* add_key(v1::ConfigNode& b, const std::string& name) {
    auto* c = b.add_children();
    c->set_name(name);
    c->set_path(b.path() + "." + name);
    return c;
}

std::shared_ptr<rule_store> store_with(std::string_view text) {
    auto store = std::make_shared<rule_store>("unused");
    auto rs = std::make_shared<rule_set>();
    std::vector<parse_error> errors;
    EXPECT_TRUE(rule_set::parse(text, *rs, errors));
    store->replace(rs);
    return store;
}

v1::RequestHeaders request(const std::string& client, const std::string& path) {
    v1::RequestHeaders r;
    r.set_method("GET");
    r.set_path(path);
    r.mutable_connection()->set_client_address(client);
    auto* h = r.add_headers();
    h->set_name("User-Agent");
    h->set_value("Mozilla/5.0");
    return r;
}

TEST(denylist_handler, blocks_a_match_with_403_and_an_audit_record) {
    denylist_handler h(store_with("# list\nip 203.0.113.0/24\npath /admin\n"));
    ASSERT_TRUE(h.configure(block()).empty());
    agent_sdk::stream_context s(1, 1);
    const auto d = h.on_request_headers(s, request("203.0.113.9", "/"));
    ASSERT_TRUE(d.has_block());
    EXPECT_EQ(d.block().status(), 403u);
    EXPECT_EQ(d.block().body(), "");
    ASSERT_EQ(d.audit().rule_ids_size(), 1);
    EXPECT_EQ(d.audit().rule_ids(0), "denylist:2");
    EXPECT_EQ(d.audit().reason(), "ip 203.0.113.0/24");
    ASSERT_EQ(d.audit().tags_size(), 1);
    EXPECT_EQ(d.audit().tags(0), "denylist");

    const auto by_path = h.on_request_headers(s, request("192.0.2.1", "/admin/x"));
    ASSERT_TRUE(by_path.has_block());
    EXPECT_EQ(by_path.audit().rule_ids(0), "denylist:3");

    const auto clean = h.on_request_headers(s, request("192.0.2.1", "/"));
    EXPECT_TRUE(clean.has_allow());
    EXPECT_FALSE(clean.has_audit());
}

TEST(denylist_handler, status_body_and_dry_run_from_config) {
    denylist_handler h(store_with("path /admin\n"));
    auto b = block();
    add_key(b, "status")->add_args()->set_integer(451);
    add_key(b, "body")->add_args()->set_string("denied\n");
    ASSERT_TRUE(h.configure(b).empty());
    agent_sdk::stream_context s(1, 1);
    const auto d = h.on_request_headers(s, request("192.0.2.1", "/admin"));
    ASSERT_TRUE(d.has_block());
    EXPECT_EQ(d.block().status(), 451u);
    EXPECT_EQ(d.block().body(), "denied\n");
    ASSERT_EQ(d.block().headers_size(), 1);
    EXPECT_EQ(d.block().headers(0).name(), "Content-Type");

    denylist_handler dry(store_with("path /admin\n"));
    auto db = block();
    add_key(db, "dry-run")->add_args()->set_boolean(true);
    ASSERT_TRUE(dry.configure(db).empty());
    const auto a = dry.on_request_headers(s, request("192.0.2.1", "/admin"));
    EXPECT_TRUE(a.has_allow());
    EXPECT_EQ(a.audit().rule_ids(0), "denylist:1");
    EXPECT_EQ(a.audit().reason(), "path /admin");
    ASSERT_EQ(a.audit().tags_size(), 2);
    EXPECT_EQ(a.audit().tags(0), "denylist");
    EXPECT_EQ(a.audit().tags(1), "dry-run");
}

TEST(denylist_handler, rejects_unknown_keys_and_bad_values) {
    denylist_handler h(store_with(""));
    auto b = block();
    add_key(b, "foo");
    add_key(b, "status")->add_args()->set_integer(302);
    add_key(b, "dry-run")->add_args()->set_string("yes");
    const auto errors = h.configure(b);
    ASSERT_EQ(errors.size(), 3u);
    EXPECT_EQ(errors[0].path, "agents.agent[deny].config.foo");
    EXPECT_EQ(errors[0].message, "unknown key \"foo\"; expected status, body or dry-run");
    EXPECT_EQ(errors[1].path, "agents.agent[deny].config.status");
    EXPECT_EQ(errors[1].message, "status must be from 400 to 599, got 302");
    EXPECT_EQ(errors[2].path, "agents.agent[deny].config.dry-run");
}

class temp_file {
public:
    temp_file() {
        char tmpl[] = "/tmp/denylist_test_XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        path_ = dir_ + "/deny.list";
    }
    ~temp_file() { std::filesystem::remove_all(dir_); }
    const std::string& path() const { return path_; }
    // Replaced by rename, as config managers do: a new inode, so a change is always visible.
    void write(std::string_view text) const {
        const std::string tmp = path_ + ".tmp";
        std::ofstream(tmp) << text;
        std::filesystem::rename(tmp, path_);
    }

private:
    std::string dir_;
    std::string path_;
};

TEST(rule_store, a_failed_reload_keeps_the_active_list) {
    temp_file f;
    f.write("ip 203.0.113.0/24\n");
    rule_store store(f.path());
    EXPECT_TRUE(store.changed());
    std::vector<std::string> errors;
    ASSERT_TRUE(store.load(errors));
    EXPECT_FALSE(store.changed());
    EXPECT_EQ(store.current()->size(), 1u);

    f.write("ip 203.0.113.0/24\npath admin\n");
    EXPECT_TRUE(store.changed());
    EXPECT_FALSE(store.load(errors));
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0], f.path() + ":2:6: a path prefix starts with /");
    EXPECT_EQ(store.current()->size(), 1u);
    EXPECT_FALSE(store.changed()) << "a bad file is tried once, not every poll";

    f.write("ip 203.0.113.0/24\npath /admin\n");
    errors.clear();
    EXPECT_TRUE(store.load(errors));
    EXPECT_EQ(store.current()->size(), 2u);

    std::filesystem::remove(f.path());
    EXPECT_TRUE(store.changed());
    EXPECT_FALSE(store.load(errors));
    EXPECT_EQ(store.current()->size(), 2u);
    EXPECT_FALSE(store.changed());
}

}  // namespace
}  // namespace sentinel::denylist
