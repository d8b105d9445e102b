// Human-readable reasons for route-explain. Kept apart from the matchers so the hot path
// stays free of string building; this runs only for the CLI and the admin API.
#include <cstdio>

#include "http/http1/message.hpp"
#include "router/matchers.hpp"

namespace sentinel::router::detail {

namespace {

// Quoted, with bytes a terminal would misrender escaped, so a hostile value cannot rewrite
// the operator's screen.
std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

std::string quoted_list(const std::vector<std::string>& values, std::string_view label = {}) {
    std::string out;
    for (const auto& v : values) {
        if (!out.empty()) out += ", ";
        if (!label.empty()) {
            out += label;
            out += ' ';
        }
        out += quoted(v);
    }
    return out;
}

std::string describe_path(const compiled_route& route, std::string_view path) {
    const auto& m = route.cfg->match;
    std::string expected;
    auto append = [&](const std::vector<std::string>& values, std::string_view label) {
        if (values.empty()) return;
        if (!expected.empty()) expected += ", ";
        expected += quoted_list(values, label);
    };
    append(m.paths, "exact");
    append(m.path_prefixes, "prefix");
    append(m.path_regexes, "regex");
    return "path " + quoted(path) + " did not match " + expected;
}

// "x-env": absent | "prod" did not match "staging" | present, must be absent
std::string describe_value_matcher(const compiled_value_matcher& m, std::string_view what,
                                   const std::vector<std::string>& seen_values, bool seen) {
    std::string out = std::string(what) + " " + quoted(m.cfg->name) + ": ";
    switch (m.cfg->kind) {
    case config::value_match_kind::present: return out + "absent";
    case config::value_match_kind::absent: return out + "present, must be absent";
    case config::value_match_kind::exact:
    case config::value_match_kind::regex:
        if (!seen) return out + "absent";
        out += quoted_list(seen_values);
        out += " did not match ";
        out += quoted_list(m.cfg->values, m.cfg->kind == config::value_match_kind::regex ? "regex" : "");
        return out;
    }
    return out;
}

}  // namespace

std::string describe(const compiled_route& route, const prepared_request& request, rejection why) {
    const auto& m = route.cfg->match;
    const request_view& r = request.request;
    switch (why.kind) {
    case matcher_kind::none: return {};
    case matcher_kind::method: return "method " + quoted(r.method) + " did not match " + quoted_list(m.methods);
    case matcher_kind::host:
        if (request.host_too_long) return "host is longer than 255 bytes";
        return "host " + quoted(request.host) + " did not match " + quoted_list(m.hosts);
    case matcher_kind::path: return describe_path(route, r.path);
    case matcher_kind::header: {
        const auto& matcher = route.headers[why.index];
        std::vector<std::string> values;
        bool seen = false;
        for (const auto& h : r.headers) {
            if (!http1::iequals(h.name, matcher.cfg->name)) continue;
            seen = true;
            values.emplace_back(h.value);
        }
        return describe_value_matcher(matcher, "header", values, seen);
    }
    case matcher_kind::query: {
        const auto& matcher = route.query[why.index];
        std::vector<std::string> values;
        std::string scratch;
        bool seen = false;
        any_query_param(r.query, [&](std::string_view name, std::string_view value) {
            if (!decoded_equals(name, matcher.cfg->name)) return false;
            seen = true;
            values.emplace_back(decode(value, scratch));
            return false;
        });
        return describe_value_matcher(matcher, "query", values, seen);
    }
    }
    return {};
}

}  // namespace sentinel::router::detail
