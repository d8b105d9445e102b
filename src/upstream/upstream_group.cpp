#include "upstream/upstream_group.hpp"

#include <boost/asio/ip/address.hpp>
#include <cstring>
#include <netdb.h>

namespace sentinel::upstream {

namespace {
std::optional<boost::asio::ip::address> resolve(const std::string& host, std::string& error) {
    boost::system::error_code ec;
    auto literal = boost::asio::ip::make_address(host, ec);
    if (!ec) return literal;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &result);
    if (rc != 0 || result == nullptr) {
        error = "cannot resolve \"" + host + "\": " + ::gai_strerror(rc);
        return std::nullopt;
    }
    std::optional<boost::asio::ip::address> address;
    if (result->ai_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(result->ai_addr);
        boost::asio::ip::address_v4::bytes_type bytes;
        std::memcpy(bytes.data(), &sin->sin_addr, 4);
        address = boost::asio::ip::address_v4(bytes);
    } else if (result->ai_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(result->ai_addr);
        boost::asio::ip::address_v6::bytes_type bytes;
        std::memcpy(bytes.data(), &sin6->sin6_addr, 16);
        address = boost::asio::ip::address_v6(bytes);
    } else {
        error = "cannot resolve \"" + host + "\": no IPv4/IPv6 address";
    }
    ::freeaddrinfo(result);
    return address;
}
}  // namespace

std::optional<upstream_group> build_group(const config::upstream_config& cfg, std::string& error) {
    upstream_group group;
    group.id = cfg.id;
    group.pool = cfg.pool;
    for (const auto& ep : cfg.endpoints) {
        auto address = resolve(ep.address.host, error);
        if (!address) {
            error = "upstream \"" + cfg.id + "\": " + error;
            return std::nullopt;
        }
        endpoint e;
        e.address = boost::asio::ip::tcp::endpoint(*address, ep.address.port);
        e.key = (address->is_v6() ? "[" + address->to_string() + "]" : address->to_string()) +
                ":" + std::to_string(ep.address.port);
        group.endpoints.push_back(std::move(e));
    }
    return group;
}

}  // namespace sentinel::upstream
