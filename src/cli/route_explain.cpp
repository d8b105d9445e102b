#include "cli/route_explain.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.hpp"
#include "http/http1/message.hpp"
#include "router/path.hpp"
#include "router/route_table.hpp"

namespace sentinel::cli {

namespace {

constexpr const char* usage =
    "usage: sentinel route-explain FILE --url URL [--method METHOD] [-H 'name: value']...\n"
    "  URL is absolute (https://host/path?query) or a path (/path?query, host from -H 'Host: ...')\n";

struct parsed_url {
    std::string host;  // authority without userinfo; empty for a path-only URL
    std::string path;
    std::string query;
};

bool parse_url(std::string_view url, parsed_url& out) {
    url = url.substr(0, url.find('#'));
    const std::size_t scheme_end = url.find("://");
    if (scheme_end != std::string_view::npos) {
        url.remove_prefix(scheme_end + 3);
        const std::size_t authority_end = url.find_first_of("/?");
        std::string_view authority = url.substr(0, authority_end);
        if (const auto at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
        if (authority.empty()) return false;
        out.host = authority;
        url = authority_end == std::string_view::npos ? std::string_view() : url.substr(authority_end);
    } else if (url.empty() || (url.front() != '/' && url != "*")) {
        return false;
    }
    const std::size_t question = url.find('?');
    out.path = url.substr(0, question);
    if (out.path.empty()) out.path = "/";
    if (question != std::string_view::npos) out.query = url.substr(question + 1);
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string action_of(const config::route_config& route) {
    if (route.upstream) return "upstream \"" + *route.upstream + "\"";
    if (route.respond) return "respond " + std::to_string(route.respond->status);
    if (route.redirect) {
        const auto& r = *route.redirect;
        std::string out = "redirect " + std::to_string(r.status);
        if (r.scheme) out += " scheme=" + *r.scheme;
        if (r.host) out += " host=" + *r.host;
        if (r.port) out += " port=" + std::to_string(*r.port);
        if (r.path) out += " path=" + *r.path;
        return out;
    }
    if (route.builtin) return "builtin status";
    return "no action";
}

std::string name_of(const config::route_config& route, std::size_t position) {
    return route.id.empty() ? "#" + std::to_string(position + 1) : route.id;
}

}  // namespace

int route_explain(int argc, char** argv) {
    std::string file, url, method = "GET";
    std::vector<std::string> raw_headers;
    for (int i = 0; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const bool has_value = i + 1 < argc;
        if ((arg == "--method" || arg == "-X") && has_value) {
            method = argv[++i];
        } else if (arg == "--url" && has_value) {
            url = argv[++i];
        } else if ((arg == "-H" || arg == "--header") && has_value) {
            raw_headers.emplace_back(argv[++i]);
        } else if (!arg.starts_with("-") && file.empty()) {
            file = arg;
        } else {
            std::fprintf(stderr, "sentinel route-explain: unexpected argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (file.empty() || url.empty()) {
        std::fputs(usage, stderr);
        return 2;
    }
    parsed_url target;
    if (!parse_url(url, target)) {
        std::fprintf(stderr, "sentinel route-explain: cannot parse URL '%s'\n%s", url.c_str(), usage);
        return 2;
    }
    std::vector<http1::header> headers;
    for (const auto& h : raw_headers) {
        const std::size_t colon = h.find(':');
        if (colon == std::string::npos || colon == 0) {
            std::fprintf(stderr, "sentinel route-explain: header '%s' is not 'name: value'\n", h.c_str());
            return 2;
        }
        headers.push_back({trim(std::string_view(h).substr(0, colon)), trim(std::string_view(h).substr(colon + 1))});
        // As in the proxy, an absolute URL's authority is the host; otherwise the Host header.
        if (target.host.empty() && http1::iequals(headers.back().name, "host")) target.host = headers.back().value;
    }

    const auto loaded = config::load_file(file);
    for (const auto& d : loaded.errors) std::fprintf(stderr, "%s\n", d.format().c_str());
    if (!loaded.ok()) return 2;

    std::string normalized;
    std::string_view path = target.path;
    switch (router::normalize_path(target.path, normalized)) {
    case router::path_status::clean: break;
    case router::path_status::normalized: path = normalized; break;
    case router::path_status::invalid:
        std::printf("path \"%s\" is invalid (dot segment above the root or hidden in %%2e): 400\n",
                    target.path.c_str());
        return 1;
    }

    const router::route_table table(loaded.cfg->routes);
    for (const auto& e : table.errors()) std::fprintf(stderr, "warning: %s\n", e.c_str());
    const router::request_view request{method, target.host, path, headers, target.query};
    std::printf("request: %s %s %.*s%s%s\n", method.c_str(), target.host.empty() ? "(no host)" : target.host.c_str(),
                static_cast<int>(path.size()), path.data(), target.query.empty() ? "" : "?",
                target.query.c_str());

    const auto steps = table.explain(request);
    std::size_t width = 0;
    for (const auto& s : steps) width = std::max(width, name_of(*s.route, s.position).size());
    for (const auto& s : steps) {
        const std::string name = name_of(*s.route, s.position);
        std::printf("  %4zu  %-*s  %s\n", s.position + 1, static_cast<int>(width), name.c_str(),
                    s.matched ? "MATCH" : s.reason.c_str());
    }
    // The explanation comes from the linear scan; the proxy uses the index. They must agree.
    const config::route_config* route = table.match(request);
    if (route != (steps.empty() || !steps.back().matched ? nullptr : steps.back().route)) {
        std::fputs("internal error: the route index and the linear scan disagree\n", stderr);
        return 2;
    }
    if (route == nullptr) {
        std::puts("no route matches: 404");
        return 1;
    }
    std::printf("route \"%s\" matches: %s\n", name_of(*route, steps.back().position).c_str(), action_of(*route).c_str());
    return 0;
}

}  // namespace sentinel::cli
