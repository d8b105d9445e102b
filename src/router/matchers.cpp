#include "router/matchers.hpp"

#include <algorithm>

#include <re2/re2.h>

#include "http/http1/message.hpp"

namespace sentinel::router::detail {

namespace {

using http1::iequals;

char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = to_lower(c);
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes one character of `raw` at `i`, advancing `i`.
char decode_at(std::string_view raw, std::size_t& i) {
    const char c = raw[i];
    if (c == '+') {
        ++i;
        return ' ';
    }
    if (c == '%' && i + 2 < raw.size()) {
        const int hi = hex_value(raw[i + 1]);
        const int lo = hex_value(raw[i + 2]);
        if (hi >= 0 && lo >= 0) {
            i += 3;
            return static_cast<char>(hi * 16 + lo);
        }
    }
    ++i;
    return c;
}

// RE2 is told not to log: a bad pattern is reported through the table's errors() instead of
// stderr, and the route simply never matches through that pattern.
compiled_regex compile_regex(const std::string& pattern, std::string_view what,
                             const config::route_config& route, std::vector<std::string>& errors) {
    compiled_regex out;
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_unique<re2::RE2>(pattern, options);
    if (!re->ok()) {
        errors.push_back("route \"" + route.id + "\": " + std::string(what) + " \"" + pattern +
                         "\": " + re->error());
        return out;
    }
    // 64 bytes of range is plenty to skip non-matching paths and to find the first segment.
    if (re->PossibleMatchRange(&out.min, &out.max, 64)) {
        const auto mismatch = std::mismatch(out.min.begin(), out.min.end(), out.max.begin(), out.max.end());
        out.literal_prefix.assign(out.min.begin(), mismatch.first);
    } else {
        out.min.clear();
        out.max.clear();
    }
    out.re = std::move(re);
    return out;
}

compiled_value_matcher compile_value_matcher(const config::value_matcher& m, std::string_view what,
                                             const config::route_config& route,
                                             std::vector<std::string>& errors) {
    compiled_value_matcher out;
    out.cfg = &m;
    if (m.kind == config::value_match_kind::regex) {
        const std::string label = std::string(what) + " \"" + m.name + "\" regex";
        for (const auto& v : m.values) out.regexes.push_back(compile_regex(v, label, route, errors));
    }
    return out;
}

// Host matching on an already lowercased, port-less host.
bool host_accepted(const compiled_route& route, std::string_view host) {
    for (const auto& h : route.exact_hosts)
        if (h == host) return true;
    for (const auto& suffix : route.wildcard_suffixes)
        if (host.size() > suffix.size() && host.ends_with(suffix)) return true;
    return false;
}

bool path_accepted(const compiled_route& route, std::string_view path) {
    const auto& m = route.cfg->match;
    for (const auto& p : m.paths)
        if (path == p) return true;
    for (const auto& p : m.path_prefixes)
        if (path.starts_with(p)) return true;
    for (const auto& re : route.path_regexes)
        if (re.full_match(path)) return true;
    return false;
}

// Thread-local so that decoding a query value for a regex allocates only until the buffer
// has grown to the longest value seen on this thread.
std::string& scratch() {
    thread_local std::string s;
    return s;
}

bool value_accepted(const compiled_value_matcher& m, std::string_view value) {
    if (m.cfg->kind == config::value_match_kind::exact)
        return std::any_of(m.cfg->values.begin(), m.cfg->values.end(),
                           [&](const std::string& v) { return v == value; });
    return std::any_of(m.regexes.begin(), m.regexes.end(),
                       [&](const compiled_regex& re) { return re.full_match(value); });
}

bool header_accepted(const compiled_value_matcher& m, std::span<const http1::header> headers) {
    const auto kind = m.cfg->kind;
    bool seen = false;
    for (const auto& h : headers) {
        if (!iequals(h.name, m.cfg->name)) continue;
        seen = true;
        if (kind == config::value_match_kind::present) return true;
        if (kind == config::value_match_kind::absent) return false;
        if (value_accepted(m, h.value)) return true;
    }
    return kind == config::value_match_kind::absent && !seen;
}

bool query_value_accepted(const compiled_value_matcher& m, std::string_view raw_value) {
    if (m.cfg->kind == config::value_match_kind::exact)
        return std::any_of(m.cfg->values.begin(), m.cfg->values.end(),
                           [&](const std::string& v) { return decoded_equals(raw_value, v); });
    const std::string_view value = decode(raw_value, scratch());
    return std::any_of(m.regexes.begin(), m.regexes.end(),
                       [&](const compiled_regex& re) { return re.full_match(value); });
}

bool query_accepted(const compiled_value_matcher& m, std::string_view query) {
    const auto kind = m.cfg->kind;
    const std::string_view name = m.cfg->name;
    bool seen = false;
    const bool hit = any_query_param(query, [&](std::string_view raw_name, std::string_view raw_value) {
        if (!decoded_equals(raw_name, name)) return false;
        seen = true;
        if (kind == config::value_match_kind::present || kind == config::value_match_kind::absent) return true;
        return query_value_accepted(m, raw_value);
    });
    if (kind == config::value_match_kind::absent) return !seen;
    return hit;
}

}  // namespace

compiled_regex::compiled_regex() = default;
compiled_regex::compiled_regex(compiled_regex&&) noexcept = default;
compiled_regex& compiled_regex::operator=(compiled_regex&&) noexcept = default;
compiled_regex::~compiled_regex() = default;

bool compiled_regex::full_match(std::string_view text) const {
    if (!re) return false;
    // The range test is exact (every anchored match lies in [min, max]) and costs a memcmp,
    // while even RE2's DFA costs tens of nanoseconds.
    if (!max.empty() && (text < min || text > max)) return false;
    return re2::RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *re);
}

compiled_route compile(const config::route_config& route, std::vector<std::string>& errors) {
    compiled_route out;
    out.cfg = &route;
    for (const auto& h : route.match.hosts) {
        if (h.size() > 2 && h[0] == '*' && h[1] == '.')
            out.wildcard_suffixes.push_back(lowercase(std::string_view(h).substr(1)));
        else
            out.exact_hosts.push_back(lowercase(h));
    }
    for (const auto& p : route.match.path_regexes)
        out.path_regexes.push_back(compile_regex(p, "path-regex", route, errors));
    for (const auto& m : route.match.headers)
        out.headers.push_back(compile_value_matcher(m, "header", route, errors));
    for (const auto& m : route.match.query)
        out.query.push_back(compile_value_matcher(m, "query", route, errors));
    return out;
}

prepared_request::prepared_request(const request_view& r) : request(r) {
    const std::string_view raw = strip_port(r.host);
    if (raw.size() > buffer_.size()) {
        host_too_long = true;
        return;
    }
    for (std::size_t i = 0; i < raw.size(); ++i) buffer_[i] = to_lower(raw[i]);
    host = std::string_view(buffer_.data(), raw.size());
}

rejection check(const compiled_route& route, const prepared_request& request) {
    const auto& m = route.cfg->match;
    const request_view& r = request.request;
    if (!m.methods.empty() &&
        std::none_of(m.methods.begin(), m.methods.end(), [&](const std::string& x) { return x == r.method; }))
        return {matcher_kind::method};
    if (!m.hosts.empty() && (request.host_too_long || !host_accepted(route, request.host)))
        return {matcher_kind::host};
    if ((!m.paths.empty() || !m.path_prefixes.empty() || !m.path_regexes.empty()) &&
        !path_accepted(route, r.path))
        return {matcher_kind::path};
    for (std::uint32_t i = 0; i < route.headers.size(); ++i)
        if (!header_accepted(route.headers[i], r.headers)) return {matcher_kind::header, i};
    for (std::uint32_t i = 0; i < route.query.size(); ++i)
        if (!query_accepted(route.query[i], r.query)) return {matcher_kind::query, i};
    return {};
}

bool accepts_rest(const compiled_route& route, const prepared_request& request, bool check_path) {
    const auto& m = route.cfg->match;
    const request_view& r = request.request;
    if (!m.methods.empty() &&
        std::none_of(m.methods.begin(), m.methods.end(), [&](const std::string& x) { return x == r.method; }))
        return false;
    if (check_path && !path_accepted(route, r.path)) return false;
    for (const auto& h : route.headers)
        if (!header_accepted(h, r.headers)) return false;
    for (const auto& q : route.query)
        if (!query_accepted(q, r.query)) return false;
    return true;
}

bool decoded_equals(std::string_view raw, std::string_view expected) {
    std::size_t i = 0, j = 0;
    while (i < raw.size()) {
        if (j == expected.size() || decode_at(raw, i) != expected[j]) return false;
        ++j;
    }
    return j == expected.size();
}

std::string_view decode(std::string_view raw, std::string& scratch) {
    if (raw.find_first_of("%+") == std::string_view::npos) return raw;
    scratch.clear();
    for (std::size_t i = 0; i < raw.size();) scratch.push_back(decode_at(raw, i));
    return scratch;
}

}  // namespace sentinel::router::detail
