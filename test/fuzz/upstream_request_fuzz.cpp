// The upstream layer's own parsers on hostile input: the consistent-hash key extraction
// (Cookie fields, query parameters, headers) and the health checker's status-line parser.
// Checks, beyond "no crash": hashing is deterministic, and an accepted status is 100-599.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "upstream/balancer.hpp"
#include "upstream/health_checker.hpp"

using namespace sentinel;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    if (auto status = upstream::parse_status_line(in)) {
        if (*status < 100 || *status > 599) std::abort();
    }

    // Split the input into a query string, a Cookie value and a header value.
    const auto a = in.find('\n');
    const auto b = a == std::string_view::npos ? a : in.find('\n', a + 1);
    http1::request_head request;
    request.query = in.substr(0, a);
    if (a != std::string_view::npos) {
        request.headers.push_back({"Cookie", in.substr(a + 1, b == std::string_view::npos ? b : b - a - 1)});
        if (b != std::string_view::npos) request.headers.push_back({"X-User", in.substr(b + 1)});
    }
    request.path = "/p";
    for (auto source : {config::hash_source::header, config::hash_source::cookie, config::hash_source::query,
                        config::hash_source::client_ip, config::hash_source::path}) {
        config::hash_key_config key;
        key.source = source;
        key.name = source == config::hash_source::header ? "x-user" : source == config::hash_source::cookie ? "sid" : "u";
        const auto h1 = upstream::request_hash(key, request, "127.0.0.1", request.path);
        const auto h2 = upstream::request_hash(key, request, "127.0.0.1", request.path);
        if (h1 != h2) std::abort();
    }
    return 0;
}
