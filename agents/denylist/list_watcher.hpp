// Reloads the denylist without a restart: on SIGHUP, and when the file's identity changes
// (polled, because inotify misses the rename-over that editors and config managers do to a
// watched path unless the directory is watched too).
#pragma once

#include <chrono>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agents/denylist/rule_store.hpp"

namespace sentinel::denylist {

class list_watcher : public std::enable_shared_from_this<list_watcher> {
public:
    list_watcher(boost::asio::io_context& io, std::shared_ptr<rule_store> store, std::chrono::milliseconds poll_interval);
    void start();

private:
    void wait_signal();
    void wait_poll();
    void reload(const char* why);

    std::shared_ptr<rule_store> store_;
    std::chrono::milliseconds poll_interval_;
    boost::asio::signal_set hangup_;
    boost::asio::steady_timer poll_timer_;
};

}  // namespace sentinel::denylist
