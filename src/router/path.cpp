#include "router/path.hpp"

namespace sentinel::router {

namespace {

bool encoded_dot(std::string_view s, std::size_t i) {
    return i + 2 < s.size() && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] == 'e' || s[i + 2] == 'E');
}

// A segment made only of '.' and %2e with one or two dots in total.
bool dot_segment(std::string_view segment, bool& encoded) {
    std::size_t dots = 0;
    encoded = false;
    for (std::size_t i = 0; i < segment.size();) {
        if (segment[i] == '.') {
            ++dots;
            ++i;
        } else if (encoded_dot(segment, i)) {
            ++dots;
            encoded = true;
            i += 3;
        } else {
            return false;
        }
    }
    return dots == 1 || dots == 2;
}

}  // namespace

path_status normalize_path(std::string_view path, std::string& out) {
    // Fast path: most paths have no segment that could be a dot segment.
    bool suspicious = false;
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] == '/' && i + 1 < path.size() && (path[i + 1] == '.' || path[i + 1] == '%')) {
            suspicious = true;
            break;
        }
    }
    if (!suspicious || path.empty() || path.front() != '/') return path_status::clean;

    out.clear();
    bool changed = false;
    std::size_t start = 1;
    for (;;) {
        const std::size_t end = path.find('/', start);
        const bool last = end == std::string_view::npos;
        const std::string_view segment = path.substr(start, last ? std::string_view::npos : end - start);
        bool encoded = false;
        if (dot_segment(segment, encoded)) {
            if (encoded) return path_status::invalid;
            changed = true;
            const bool up = segment.size() == 2;
            if (up) {
                if (out.empty()) return path_status::invalid;  // above the root
                out.erase(out.rfind('/'));
            }
            if (last) out += '/';  // "/a/.." → "/", "/a/." → "/a/"
        } else {
            out += '/';
            out += segment;
        }
        if (last) break;
        start = end + 1;
    }
    if (out.empty()) out = "/";
    return changed ? path_status::normalized : path_status::clean;
}

}  // namespace sentinel::router
