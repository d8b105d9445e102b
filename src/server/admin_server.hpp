// The admin listener (only when the config has an `admin` block): /healthz, /readyz,
// /metrics, /upstreams, /config, POST /reload and POST /drain, on the main thread's io_context, never on a traffic listener.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "config/model/config.hpp"
#include "server/server.hpp"

namespace sentinel::server {

struct admin_hooks {
    std::function<std::string()> metrics;
    std::function<std::string()> upstreams;  // GET /upstreams (JSON)
    std::function<std::string()> config;     // GET /config (KDL, secrets redacted)
    std::function<void()> drain;             // POST /drain
    std::function<bool()> ready;
    std::function<server::reload_result()> reload;
};

class admin_server {
public:
    static std::unique_ptr<admin_server> start(boost::asio::io_context& ctx, const config::admin_config& cfg,
                                               admin_hooks hooks, std::string& error);
    ~admin_server();
    void stop();

private:
    struct impl;
    explicit admin_server(std::shared_ptr<impl> i) : impl_(std::move(i)) {}
    std::shared_ptr<impl> impl_;
};

}  // namespace sentinel::server
