#include "http/websocket/handshake.hpp"

#include <openssl/evp.h>

#include <cstring>

#include "http/http1/chars.hpp"

namespace sentinel::websocket {

namespace {

using http1::iequals;

constexpr std::string_view accept_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// Index of `c` in the base64 alphabet (RFC 4648 §4), or -1.
int base64_index(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// The one value of field `name`; false when it is absent or present more than once.
bool single_field(const std::vector<http1::header>& headers, std::string_view name, std::string_view& value) {
    int count = 0;
    for (const auto& h : headers) {
        if (!iequals(h.name, name)) continue;
        value = h.value;
        ++count;
    }
    return count == 1;
}

// RFC 6455 §4.1: version = DIGIT | (NZDIGIT DIGIT) | ("1" DIGIT DIGIT) | ("2" DIGIT DIGIT),
// "limited to range 0-255": a number 0-255 without leading zeros.
bool well_formed_version(std::string_view v) {
    if (v.empty() || v.size() > 3 || (v.size() > 1 && v[0] == '0')) return false;
    int n = 0;
    for (char c : v) {
        if (!http1::detail::is_digit(c)) return false;
        n = n * 10 + (c - '0');
    }
    return n <= 255;
}

}  // namespace

bool requests_websocket(const std::vector<http1::header>& headers) {
    for (const auto& h : headers) {
        if (!iequals(h.name, "upgrade")) continue;
        const bool listed = !http1::detail::for_each_list_element(
            h.value, [](std::string_view protocol) { return !iequals(protocol, "websocket"); });
        if (listed) return true;
    }
    return false;
}

bool valid_key(std::string_view key) {
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
    for (std::size_t i = 0; i < 22; ++i)
        if (base64_index(key[i]) < 0) return false;
    // 16 bytes are 128 bits; 22 characters carry 132: the last character's low 4 bits are padding.
    return (base64_index(key[21]) & 0x0F) == 0;
}

request_problem check_request(const http1::request_head& request, std::string_view& key) {
    if (request.method != "GET") return request_problem::method;
    if (request.version_minor != 1) return request_problem::http_version;
    if (!http1::named_in_connection(request.headers, "upgrade")) return request_problem::connection;
    std::string_view k;
    if (!single_field(request.headers, "sec-websocket-key", k) || !valid_key(k)) return request_problem::key;
    std::string_view version;
    if (!single_field(request.headers, "sec-websocket-version", version) || !well_formed_version(version))
        return request_problem::version;
    if (version != supported_version) return request_problem::unsupported_version;
    key = k;
    return request_problem::ok;
}

accept_value compute_accept(std::string_view key) {
    // Keys are 24 characters once validated; the buffer also takes anything shorter than 64.
    char input[64 + accept_guid.size()];
    const std::size_t key_size = std::min<std::size_t>(key.size(), 64);
    std::memcpy(input, key.data(), key_size);
    std::memcpy(input + key_size, accept_guid.data(), accept_guid.size());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    EVP_Digest(input, key_size + accept_guid.size(), digest, &digest_size, EVP_sha1(), nullptr);
    // 20 bytes → 28 base64 characters, plus the NUL EVP_EncodeBlock writes.
    unsigned char encoded[29];
    EVP_EncodeBlock(encoded, digest, static_cast<int>(digest_size));
    accept_value out;
    std::memcpy(out.data(), encoded, out.size());
    return out;
}

response_problem check_response(const http1::response_head& response, std::string_view expected_accept) {
    std::string_view upgrade;
    if (!single_field(response.headers, "upgrade", upgrade) || !iequals(upgrade, "websocket"))
        return response_problem::upgrade;
    if (!http1::named_in_connection(response.headers, "upgrade")) return response_problem::connection;
    std::string_view accept;
    if (!single_field(response.headers, "sec-websocket-accept", accept) || accept != expected_accept)
        return response_problem::accept;
    return response_problem::ok;
}

}  // namespace sentinel::websocket
