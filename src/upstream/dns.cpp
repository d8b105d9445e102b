#include "upstream/dns.hpp"

#include <algorithm>
#include <cstring>
#include <netdb.h>

namespace sentinel::upstream {

std::vector<boost::asio::ip::address> resolve_host(const std::string& host, std::string& error) {
    std::vector<boost::asio::ip::address> out;
    boost::system::error_code ec;
    auto literal = boost::asio::ip::make_address(host, ec);
    if (!ec) {
        out.push_back(literal);
        return out;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &result);
    if (rc != 0 || result == nullptr) {
        error = "cannot resolve \"" + host + "\": " + ::gai_strerror(rc);
        return out;
    }
    for (const addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
            boost::asio::ip::address_v4::bytes_type bytes;
            std::memcpy(bytes.data(), &sin->sin_addr, 4);
            out.emplace_back(boost::asio::ip::address_v4(bytes));
        } else if (ai->ai_family == AF_INET6) {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
            boost::asio::ip::address_v6::bytes_type bytes;
            std::memcpy(bytes.data(), &sin6->sin6_addr, 16);
            out.emplace_back(boost::asio::ip::address_v6(bytes));
        }
    }
    ::freeaddrinfo(result);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    if (out.empty()) error = "cannot resolve \"" + host + "\": no IPv4/IPv6 address";
    return out;
}

}  // namespace sentinel::upstream
