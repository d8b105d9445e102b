// sentinel-echo-agent --socket PATH [--worker-threads N]
#include <memory>

#include "agents/echo/echo_handler.hpp"
#include "agents/sdk/cpp/run_agent.hpp"

int main(int argc, char** argv) {
    using namespace sentinel;
    return agent_sdk::run_agent(argc, argv,
                                {
                                    .name = "sentinel-echo-agent",
                                    .version = SENTINEL_AGENT_VERSION,
                                    .summary = "Allows every request and adds X-Echo-* request headers describing "
                                               "what the agent saw (for testing the agent path).",
                                    .make_handler = [] {
                                        return std::make_unique<echo_agent::echo_handler>(SENTINEL_AGENT_VERSION);
                                    },
                                });
}
