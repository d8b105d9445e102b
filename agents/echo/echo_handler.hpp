// The echo agent's handler: it allows every request and tells the upstream, in request
// headers, what the agent saw. Its use is end-to-end testing of the agent path (did the event
// carry the right facts, did mutations and metadata arrive) and a template for new agents.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "agents/sdk/cpp/handler.hpp"

namespace sentinel::echo_agent {

namespace v1 = sentinel::agent::v1;
using agent_sdk::config_error;
using agent_sdk::stream_context;

// True for 1-200 RFC 9110 token characters: what a header name may start with, leaving room
// for our suffixes under the proxy's 256-byte name limit.
bool valid_header_prefix(std::string_view prefix);

class echo_handler final : public agent_sdk::handler {
public:
    explicit echo_handler(std::string agent_version) : version_(std::move(agent_version)) {}

    // config { header-prefix "X-Echo-"; response-header #true }
    std::vector<config_error> configure(const v1::ConfigNode& config) override;
    // REQUEST_HEADERS only: response mutations ride on that decision too.
    v1::Capabilities capabilities() const override;
    v1::Decision on_request_headers(stream_context& stream, const v1::RequestHeaders& event) override;

    const std::string& header_prefix() const noexcept { return prefix_; }
    bool response_header() const noexcept { return response_header_; }

private:
    std::string version_;
    std::string prefix_ = "X-Echo-";
    bool response_header_ = false;
};

}  // namespace sentinel::echo_agent
