// The process: main thread (signals, reload, admin, config watcher) plus N workers. Builds
// runtime objects from config snapshots and publishes them; owns the listener set.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/model/config.hpp"

namespace sentinel::server {

struct run_options {
    std::string config_path;  // empty: the embedded default config
};

class server {
public:
    server(run_options options, std::shared_ptr<const config::config> initial);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds every listener and serves until SIGTERM/SIGINT. Returns the process exit code:
    // 0 after a graceful shutdown, non-zero if start-up failed (e.g. a listener cannot bind).
    int run();

    struct reload_result {
        bool ok = false;
        std::vector<std::string> errors;
        std::string hash;
    };
    // Loads the config file again and applies it; a failure changes nothing.
    reload_result reload(std::string_view trigger);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sentinel::server
