// sentinel-denylist-agent --socket PATH --list FILE [--worker-threads N]
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agents/denylist/denylist_handler.hpp"
#include "agents/denylist/list_watcher.hpp"
#include "agents/sdk/cpp/log.hpp"
#include "agents/sdk/cpp/run_agent.hpp"

int main(int argc, char** argv) {
    using namespace sentinel;
    std::string list_path;
    std::shared_ptr<denylist::rule_store> store;
    return agent_sdk::run_agent(
        argc, argv,
        {
            .name = "sentinel-denylist-agent",
            .version = SENTINEL_AGENT_VERSION,
            .summary = "Blocks requests whose client address, path, headers or User-Agent match a rules file.",
            .add_flags =
                [&](agent_sdk::flag_set& flags) {
                    flags.add_string("list", "FILE",
                                     "rules file; reloaded on SIGHUP and when it changes (checked every second)",
                                     list_path, /*required=*/true);
                },
            .start =
                [&](agent_sdk::server& srv, std::string& error) {
                    store = std::make_shared<denylist::rule_store>(list_path);
                    std::vector<std::string> errors;
                    // At start-up a bad list is fatal: there is no previous list to fall back on.
                    if (!store->load(errors)) {
                        for (std::size_t i = 0; i < errors.size(); ++i) error += (i ? "\n" : "") + errors[i];
                        return false;
                    }
                    agent_sdk::log_line("loaded " + list_path + ": " + std::to_string(store->current()->size()) +
                                        " rules");
                    auto watcher = std::make_shared<denylist::list_watcher>(srv.io_context(), store,
                                                                            std::chrono::seconds(1));
                    watcher->start();
                    srv.attach(watcher);
                    return true;
                },
            .make_handler = [&store] { return std::make_unique<denylist::denylist_handler>(store); },
        });
}
