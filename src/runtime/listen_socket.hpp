// Listening sockets for the workers. Each worker accepts on its own socket bound to the same
// address with SO_REUSEPORT, so the kernel spreads connections and a connection never
// migrates. Sockets are opened on the main thread: a bind failure is reported before anything
// is published (at start-up: exit non-zero; on reload: the reload fails, nothing changes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/model/config.hpp"

namespace sentinel::runtime {

struct listen_sockets {
    std::vector<int> fds;     // one per worker, listening
    std::uint16_t port = 0;   // the bound port (resolves port 0)
};

// Opens `count` listening sockets on `address` (an IPv4 or IPv6 literal). Returns false and
// sets `error` on failure, closing what was opened.
bool open_listen_sockets(const config::socket_address& address, std::size_t count, int backlog,
                         listen_sockets& out, std::string& error);

void close_sockets(listen_sockets& sockets);

}  // namespace sentinel::runtime
