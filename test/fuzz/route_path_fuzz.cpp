// Path normalisation and route matching on hostile input. Checks, beyond "no crash":
// a normalised path starts with '/', holds no dot segment, and normalising it again changes
// nothing; matching a normalised path never depends on how it was spelled before.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "router/path.hpp"
#include "router/route_table.hpp"

namespace {

using namespace sentinel;

const router::route_table& table() {
    static const std::vector<config::route_config> routes = [] {
        std::vector<config::route_config> r(4);
        r[0].id = "admin";
        r[0].match.path_prefixes = {"/admin/"};
        r[1].id = "public";
        r[1].match.path_prefixes = {"/public/"};
        r[1].match.hosts = {"*.example.com", "example.com"};
        r[2].id = "exact";
        r[2].match.paths = {"/exact"};
        r[2].match.methods = {"GET"};
        r[3].id = "any";
        r[3].match.path_prefixes = {"/"};
        return r;
    }();
    static const router::route_table t(routes);
    return t;
}

bool has_dot_segment(std::string_view path) {
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] != '/') continue;
        const std::string_view rest = path.substr(i + 1);
        const std::string_view segment = rest.substr(0, rest.find('/'));
        if (segment == "." || segment == "..") return true;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t split = input.find('\n');
    const std::string_view path = input.substr(0, split);
    const std::string_view host = split == std::string_view::npos ? std::string_view() : input.substr(split + 1);

    std::string normalized;
    const auto status = router::normalize_path(path, normalized);
    std::string_view routed = path;
    if (status == router::path_status::normalized) {
        if (normalized.empty() || normalized.front() != '/' || has_dot_segment(normalized)) std::abort();
        std::string again;
        if (router::normalize_path(normalized, again) != router::path_status::clean) std::abort();
        routed = normalized;
    } else if (status == router::path_status::clean && !path.empty() && path.front() == '/' &&
               has_dot_segment(path)) {
        std::abort();  // a dot segment slipped through as "clean"
    }
    if (status != router::path_status::invalid) {
        const auto* route = table().match({"GET", host, routed});
        // The catch-all "/" prefix matches every origin-form path.
        if (route == nullptr && !routed.empty() && routed.front() == '/') std::abort();
    }
    return 0;
}
