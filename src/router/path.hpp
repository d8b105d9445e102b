// Request-path normalisation before routing (RFC 3986 §5.2.4 dot-segment removal), so that
// "/public/../admin" cannot match a "/public/" route and reach /admin upstream.
#pragma once

#include <string>
#include <string_view>

namespace sentinel::router {

enum class path_status {
    clean,       // no dot segments: route and forward the path as received
    normalized,  // dot segments removed: `out` holds the path to route and forward
    invalid,     // climbs above the root, or hides a dot segment in %2e: answer 400
};

path_status normalize_path(std::string_view path, std::string& out);

}  // namespace sentinel::router
