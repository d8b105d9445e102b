// The denylist agent's handler: blocks (or, in dry-run, only audits) requests that match the
// active rule list. Configuration (the proxy's `config {}` block for this agent):
//
//     config { status 403; body "denied\n"; dry-run #false }
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agents/denylist/rule_store.hpp"
#include "agents/sdk/cpp/handler.hpp"

namespace sentinel::denylist {

namespace v1 = sentinel::agent::v1;

struct denylist_settings {
    std::uint32_t status = 403;
    std::string body;
    bool dry_run = false;  // allow matches, but still attach the audit record
};

class denylist_handler final : public agent_sdk::handler {
public:
    explicit denylist_handler(std::shared_ptr<const rule_store> store) : store_(std::move(store)) {}

    std::vector<agent_sdk::config_error> configure(const v1::ConfigNode& config) override;
    v1::Capabilities capabilities() const override;
    v1::Decision on_request_headers(agent_sdk::stream_context& stream, const v1::RequestHeaders& event) override;

    const denylist_settings& settings() const noexcept { return settings_; }

private:
    std::shared_ptr<const rule_store> store_;
    denylist_settings settings_;
};

}  // namespace sentinel::denylist
