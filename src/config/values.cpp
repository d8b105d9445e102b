#include "config/values.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <vector>

namespace sentinel::config {
namespace {

// Splits "123unit" into the number and the unit; nullopt unless the text is digits + letters.
std::optional<std::pair<std::uint64_t, std::string_view>> split_number_unit(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || digits == text.size()) return std::nullopt;
    std::uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, n);
    if (ec != std::errc() || ptr != text.data() + digits) return std::nullopt;
    return std::pair{n, text.substr(digits)};
}

std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t limit) {
    if (b != 0 && a > limit / b) return std::nullopt;
    return a * b;
}

}  // namespace

std::optional<duration> parse_duration(std::string_view text) {
    auto split = split_number_unit(text);
    if (!split) return std::nullopt;
    auto [n, unit] = *split;
    std::uint64_t factor = 0;
    if (unit == "ms") factor = 1;
    else if (unit == "s") factor = 1000;
    else if (unit == "m") factor = 60'000;
    else if (unit == "h") factor = 3'600'000;
    else if (unit == "d") factor = 86'400'000;
    else return std::nullopt;
    auto ms = checked_mul(n, factor, static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
    if (!ms) return std::nullopt;
    return duration(static_cast<std::int64_t>(*ms));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    auto split = split_number_unit(text);
    if (!split) return std::nullopt;
    auto [n, unit] = *split;
    std::uint64_t factor = 0;
    if (unit == "B") factor = 1;
    else if (unit == "KiB") factor = 1ull << 10;
    else if (unit == "MiB") factor = 1ull << 20;
    else if (unit == "GiB") factor = 1ull << 30;
    else return std::nullopt;
    return checked_mul(n, factor, std::numeric_limits<std::uint64_t>::max());
}

std::string format_duration(duration d) {
    auto ms = d.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

std::string format_size(std::uint64_t bytes) {
    if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
    if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
    if (bytes != 0 && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
    return std::to_string(bytes) + "B";
}

namespace {

bool is_dns_name(std::string_view host) {
    if (host.empty() || host.size() > 253) return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i < host.size(); ++i) {
        char c = host[i];
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok || ++label > 63) return false;
    }
    return label != 0;
}

bool looks_numeric_v4(std::string_view host) {
    return !host.empty() && std::all_of(host.begin(), host.end(),
                                        [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

}  // namespace

address_parse parse_socket_address(std::string_view text) {
    address_parse out;
    std::string_view host;
    std::string_view port;
    if (text.empty()) {
        out.error = "empty address";
        return out;
    }
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) {
            out.error = "missing ']' after the IPv6 address";
            return out;
        }
        host = text.substr(1, close - 1);
        auto rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') {
            out.error = "missing \":port\" after \"[" + std::string(host) + "]\"";
            return out;
        }
        port = rest.substr(1);
        in6_addr a6{};
        if (!inet_pton(AF_INET6, std::string(host).c_str(), &a6)) {
            out.error = "\"" + std::string(host) + "\" is not an IPv6 address";
            return out;
        }
        out.kind = host_kind::ipv6;
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            out.error = "missing \":port\"";
            return out;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            out.error = "an IPv6 address must be in brackets, like \"[::1]:8080\"";
            return out;
        }
        if (looks_numeric_v4(host)) {
            in_addr a4{};
            if (!inet_pton(AF_INET, std::string(host).c_str(), &a4)) {
                out.error = "\"" + std::string(host) + "\" is not an IPv4 address";
                return out;
            }
            out.kind = host_kind::ipv4;
        } else if (!is_dns_name(host)) {
            out.error = "\"" + std::string(host) + "\" is not a valid host name";
            return out;
        } else {
            out.kind = host_kind::name;
        }
    }
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value > 65535 ||
        (port.size() > 1 && port.front() == '0')) {
        out.error = "port \"" + std::string(port) + "\" is not a number from 0 to 65535";
        return out;
    }
    socket_address addr;
    addr.host = std::string(host);
    addr.port = static_cast<std::uint16_t>(value);
    addr.text = std::string(text);
    out.address = std::move(addr);
    return out;
}

cidr_parse parse_cidr(std::string_view text) {
    cidr_parse out;
    auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        out.error = "missing \"/prefix-length\" (write a single address as \"10.0.0.1/32\" or \"::1/128\")";
        return out;
    }
    std::string host(text.substr(0, slash));
    auto len_text = text.substr(slash + 1);
    cidr net;
    net.text = std::string(text);
    unsigned max_len = 32;
    if (inet_pton(AF_INET, host.c_str(), net.bytes) == 1) {
        net.v6 = false;
    } else if (inet_pton(AF_INET6, host.c_str(), net.bytes) == 1) {
        net.v6 = true;
        max_len = 128;
    } else {
        out.error = "\"" + host + "\" is not an IPv4 or IPv6 address";
        return out;
    }
    unsigned len = 0;
    auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (len_text.empty() || ec != std::errc() || ptr != len_text.data() + len_text.size() ||
        len > max_len) {
        out.error = "prefix length \"" + std::string(len_text) + "\" is not a number from 0 to " +
                    std::to_string(max_len);
        return out;
    }
    net.prefix_len = static_cast<std::uint8_t>(len);
    // Host bits set beyond the prefix usually mean a typo in the prefix length.
    cidr masked = net;
    for (unsigned bit = len; bit < max_len; ++bit)
        masked.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
    if (std::memcmp(masked.bytes, net.bytes, sizeof net.bytes) != 0) {
        char buf[INET6_ADDRSTRLEN] = {};
        inet_ntop(net.v6 ? AF_INET6 : AF_INET, masked.bytes, buf, sizeof buf);
        out.error = "host bits are set beyond the /" + std::to_string(len) + " prefix (the network is \"" +
                    std::string(buf) + "/" + std::to_string(len) + "\")";
        return out;
    }
    out.network = std::move(net);
    return out;
}

bool is_http_token(std::string_view text) {
    if (text.empty()) return false;
    for (unsigned char c : text) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
        if (!ok || c == 0) return false;
    }
    return true;
}

bool is_header_value(std::string_view text) {
    return std::none_of(text.begin(), text.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    const std::size_t n = a.size(), m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
        for (std::size_t j = 1; j <= m; ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[n][m];
}

namespace {

template <class Range>
std::string closest(std::string_view word, const Range& candidates) {
    std::string lower(word);
    for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    std::string best;
    std::size_t best_d = std::numeric_limits<std::size_t>::max();
    for (const auto& cand : candidates) {
        std::string_view c(cand);
        std::size_t d = std::min(edit_distance(word, c), edit_distance(lower, c));
        // Allow roughly one edit per three characters, at least one, at most three.
        std::size_t limit = std::clamp<std::size_t>(std::min(word.size(), c.size()) / 3, 1, 3);
        if (d <= limit && d < best_d) {
            best_d = d;
            best = std::string(c);
        }
    }
    return best;
}

}  // namespace

std::string closest_match(std::string_view word, std::span<const std::string_view> candidates) {
    return closest(word, candidates);
}

std::string closest_match(std::string_view word, std::span<const std::string> candidates) {
    return closest(word, candidates);
}

}  // namespace sentinel::config
