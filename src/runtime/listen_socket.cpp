#include "runtime/listen_socket.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sentinel::runtime {

namespace {

bool resolve(const config::socket_address& address, sockaddr_storage& storage, socklen_t& length,
             std::string& error) {
    std::memset(&storage, 0, sizeof storage);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (::inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(address.port);
        length = sizeof *v4;
        return true;
    }
    if (::inet_pton(AF_INET6, address.host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(address.port);
        length = sizeof *v6;
        return true;
    }
    // The schema only admits IP literals for listen addresses (a name could resolve to a
    // different address on every reload).
    error = "listen address " + address.text + " is not an IP address";
    return false;
}

int open_one(const sockaddr_storage& storage, socklen_t length, int backlog, std::string& error,
             const std::string& text) {
    const int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = "cannot create socket for " + text + ": " + std::strerror(errno);
        return -1;
    }
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    if (storage.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0 || ::listen(fd, backlog) != 0) {
        error = "cannot listen on " + text + ": " + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

bool open_listen_sockets(const config::socket_address& address, std::size_t count, int backlog,
                         listen_sockets& out, std::string& error) {
    sockaddr_storage storage;
    socklen_t length = 0;
    if (!resolve(address, storage, length, error)) return false;
    out.fds.clear();
    for (std::size_t i = 0; i < count; ++i) {
        const int fd = open_one(storage, length, backlog, error, address.text);
        if (fd < 0) {
            close_sockets(out);
            return false;
        }
        out.fds.push_back(fd);
        if (i == 0) {
            // Port 0: the kernel picked a port; the other workers' sockets join that one.
            sockaddr_storage bound;
            socklen_t bound_length = sizeof bound;
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length);
            const std::uint16_t port = bound.ss_family == AF_INET
                                           ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                                           : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
            out.port = port;
            if (storage.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
            else reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
        }
    }
    return true;
}

void close_sockets(listen_sockets& sockets) {
    for (int fd : sockets.fds) ::close(fd);
    sockets.fds.clear();
}

}  // namespace sentinel::runtime
