// Name resolution for upstream endpoints. Blocking (getaddrinfo): called only off the
// workers, at load/reload time and by the DNS refresher thread.
#pragma once

#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace sentinel::upstream {

// Every IPv4 and IPv6 address of `host` (an IP literal yields itself), deduplicated and in a
// stable order (sorted), so an unchanged answer compares equal. Empty on failure, with
// `error` set.
std::vector<boost::asio::ip::address> resolve_host(const std::string& host, std::string& error);

}  // namespace sentinel::upstream
