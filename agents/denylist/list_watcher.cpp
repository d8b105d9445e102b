#include "agents/denylist/list_watcher.hpp"

#include <csignal>
#include <string>
#include <vector>

#include "agents/sdk/cpp/log.hpp"

namespace sentinel::denylist {

using agent_sdk::log_line;

list_watcher::list_watcher(boost::asio::io_context& io, std::shared_ptr<rule_store> store,
                           std::chrono::milliseconds poll_interval)
    : store_(std::move(store)), poll_interval_(poll_interval), hangup_(io, SIGHUP), poll_timer_(io) {}

void list_watcher::start() {
    wait_signal();
    wait_poll();
}

// Callbacks hold a weak reference: the server destroys the watcher before its io_context.
void list_watcher::wait_signal() {
    hangup_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec, int) {
        auto self = weak.lock();
        if (ec || !self) return;
        self->reload("SIGHUP");
        self->wait_signal();
    });
}

void list_watcher::wait_poll() {
    poll_timer_.expires_after(poll_interval_);
    poll_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (ec || !self) return;
        if (self->store_->changed()) self->reload("file changed");
        self->wait_poll();
    });
}

void list_watcher::reload(const char* why) {
    std::vector<std::string> errors;
    if (store_->load(errors)) {
        log_line(std::string("reloaded ") + store_->path() + " (" + why + "): " +
                 std::to_string(store_->current()->size()) + " rules");
        return;
    }
    for (const auto& e : errors) log_line(e);
    log_line(std::string("reload of ") + store_->path() + " (" + why + ") failed; keeping the previous list of " +
             std::to_string(store_->current()->size()) + " rules");
}

}  // namespace sentinel::denylist
