// The main() of an agent in one call: common flags, logging, listening, signals, exit status.
//
//     int main(int argc, char** argv) {
//         return sentinel::agent_sdk::run_agent(argc, argv, {
//             .name = "sentinel-echo-agent",
//             .version = "0.1.0",
//             .summary = "adds X-Echo-* headers describing each request",
//             .make_handler = [] { return std::make_unique<echo_handler>(); },
//         });
//     }
//
// Common flags: --socket PATH|tcp://HOST:PORT (required), --worker-threads N, --ready-file FILE,
// --drain-timeout S, --help, --version (the Python SDK's agents take the same).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agents/sdk/cpp/handler.hpp"
#include "agents/sdk/cpp/server.hpp"

namespace sentinel::agent_sdk {

// Flags of the form `--name VALUE` or `--name=VALUE`, and switches `--name`.
class flag_set {
public:
    // `apply` checks and stores the value; false with `error` rejects it.
    using apply_fn = std::function<bool(std::string_view value, std::string& error)>;

    void add(std::string name, std::string value_name, std::string help, apply_fn apply, bool required = false);
    void add_string(std::string name, std::string value_name, std::string help, std::string& target,
                    bool required = false);
    void add_unsigned(std::string name, std::string value_name, std::string help, unsigned& target,
                      unsigned max);
    void add_switch(std::string name, std::string help, bool& target);

    // Parses argv[1..]. False with `error` on an unknown flag, a missing or bad value, a missing
    // required flag, or a positional argument.
    bool parse(int argc, const char* const* argv, std::string& error);
    std::string usage(std::string_view program, std::string_view summary) const;

private:
    struct flag {
        std::string name;        // without the leading "--"
        std::string value_name;  // empty: a switch
        std::string help;
        apply_fn apply;
        bool required = false;
        bool seen = false;
    };
    std::vector<flag> flags_;
};

struct agent_spec {
    std::string name;     // HelloAck.agent_name and the log prefix
    std::string version;  // HelloAck.agent_version
    std::string summary;  // one line for --help
    // Registers the agent's own flags (optional).
    std::function<void(flag_set&)> add_flags;
    // Runs after the flags are parsed and before listening (optional): load files, hook
    // reloads onto server.io_context(). False with `error` fails start-up (exit status 1).
    std::function<bool(server&, std::string& error)> start;
    handler_factory make_handler;
    server_options options;  // name, version, worker_threads are filled in from the above
};

// Returns the process exit status: 0 after a clean shutdown, 1 when start-up fails, 2 on a
// command-line error.
int run_agent(int argc, const char* const* argv, agent_spec spec);
inline int run_agent(int argc, char** argv, agent_spec spec) {
    return run_agent(argc, const_cast<const char* const*>(argv), std::move(spec));
}

}  // namespace sentinel::agent_sdk
