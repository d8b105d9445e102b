// A worker's accept loop on one listening socket: admission control (connection limits),
// then one http1_connection per accepted socket, spawned on this worker.
#pragma once

#include <memory>
#include <string>

#include "proxy/worker_context.hpp"

namespace sentinel::proxy {

class acceptor {
public:
    // Takes ownership of the listening `fd`.
    acceptor(worker_context& worker, int fd, std::string listener_key);
    ~acceptor();
    void start();
    void stop();  // closes the socket; the loop ends

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace sentinel::proxy
