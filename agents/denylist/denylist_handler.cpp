#include "agents/denylist/denylist_handler.hpp"

#include "agents/sdk/cpp/config.hpp"
#include "agents/sdk/cpp/decision.hpp"

namespace sentinel::denylist {

std::vector<agent_sdk::config_error> denylist_handler::configure(const v1::ConfigNode& config) {
    std::vector<agent_sdk::config_error> errors;
    agent_sdk::for_each_key(config, {"status", "body", "dry-run"}, errors, [&](const v1::ConfigNode& node) {
        if (node.name() == "status") {
            const auto v = agent_sdk::integer_value(node, errors);
            if (!v) return;
            // A block answers with an error status (PROTOCOL.md §6); anything else is refused there.
            if (*v < 400 || *v > 599) {
                errors.push_back({node.path(), "status must be from 400 to 599, got " + std::to_string(*v)});
                return;
            }
            settings_.status = static_cast<std::uint32_t>(*v);
        } else if (node.name() == "body") {
            if (auto v = agent_sdk::string_value(node, errors)) settings_.body = std::move(*v);
        } else {
            if (const auto v = agent_sdk::bool_value(node, errors)) settings_.dry_run = *v;
        }
    });
    return errors;
}

v1::Capabilities denylist_handler::capabilities() const {
    v1::Capabilities c;
    c.add_events(v1::REQUEST_HEADERS);
    return c;
}

v1::Decision denylist_handler::on_request_headers(agent_sdk::stream_context&, const v1::RequestHeaders& event) {
    // Held for the whole call: a reload swapping the list cannot free the matched rule.
    const auto rules = store_->current();
    std::vector<header_view> headers;
    headers.reserve(static_cast<std::size_t>(event.headers_size()));
    for (const auto& h : event.headers()) headers.push_back({h.name(), h.value()});
    const rule* r = rules->match({event.connection().client_address(), event.path(), headers});
    if (!r) return agent_sdk::allow();

    v1::Decision d;
    if (settings_.dry_run) {
        d = agent_sdk::allow();
    } else {
        d = agent_sdk::block(settings_.status, settings_.body);
        if (!settings_.body.empty()) {
            auto* h = d.mutable_block()->add_headers();
            h->set_name("Content-Type");
            h->set_value("text/plain; charset=utf-8");
        }
    }
    auto* audit = d.mutable_audit();
    audit->add_tags("denylist");
    if (settings_.dry_run) audit->add_tags("dry-run");
    audit->add_rule_ids("denylist:" + std::to_string(r->line));
    audit->set_reason(r->text);
    return d;
}

}  // namespace sentinel::denylist
