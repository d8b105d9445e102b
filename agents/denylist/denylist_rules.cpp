#include "agents/denylist/denylist_rules.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

namespace sentinel::denylist {

namespace {

constexpr std::uint32_t no_match = std::numeric_limits<std::uint32_t>::max();

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

ip_key mask(ip_key k, unsigned prefix) {
    auto high_bits = [](unsigned n) -> std::uint64_t { return n == 0 ? 0 : n >= 64 ? ~0ull : ~0ull << (64 - n); };
    if (prefix <= 64) return {k.hi & high_bits(prefix), 0};
    return {k.hi, k.lo & high_bits(prefix - 64)};
}

std::uint64_t load_be64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
    return v;
}

std::string format_key(const ip_key& k, bool v4) {
    char text[INET6_ADDRSTRLEN] = {};
    if (v4) {
        const std::uint32_t a = htonl(static_cast<std::uint32_t>(k.lo));
        ::inet_ntop(AF_INET, &a, text, sizeof text);
    } else {
        unsigned char b[16];
        for (int i = 0; i < 8; ++i) {
            b[i] = static_cast<unsigned char>(k.hi >> (56 - 8 * i));
            b[8 + i] = static_cast<unsigned char>(k.lo >> (56 - 8 * i));
        }
        ::inet_ntop(AF_INET6, b, text, sizeof text);
    }
    return text;
}

// One line being parsed: a cursor over it that knows its 1-based columns.
struct line_cursor {
    std::string_view text;
    std::size_t pos = 0;

    void skip_blanks() {
        while (pos < text.size() && is_blank(text[pos])) ++pos;
    }
    bool at_end() const { return pos >= text.size(); }
    std::size_t column() const { return pos + 1; }
    std::string_view word() {
        const std::size_t start = pos;
        while (pos < text.size() && !is_blank(text[pos])) ++pos;
        return text.substr(start, pos - start);
    }
    // The rest of the line without surrounding blanks.
    std::string_view rest() {
        skip_blanks();
        std::size_t end = text.size();
        while (end > pos && is_blank(text[end - 1])) --end;
        std::string_view r = text.substr(pos, end - pos);
        pos = text.size();
        return r;
    }
};

}  // namespace

std::string format_error(std::string_view file, const parse_error& e) {
    return std::string(file) + ":" + std::to_string(e.line) + ":" + std::to_string(e.column) + ": " + e.message;
}

bool parse_ip(std::string_view text, ip_key& out) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    // glibc's inet_pton is strict: four decimal octets without leading zeros for IPv4, RFC 4291
    // text for IPv6, no zone ids, no surrounding blanks.
    in_addr v4{};
    if (::inet_pton(AF_INET, buf, &v4) == 1) {
        out = {0, 0x0000ffff00000000ull | ntohl(v4.s_addr)};
        return true;
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, buf, &v6) == 1) {
        out = {load_be64(v6.s6_addr), load_be64(v6.s6_addr + 8)};
        return true;
    }
    return false;
}

std::string normalize_path(std::string_view path) {
    // 1. Decode once. %2F stays encoded: decoding it would turn one segment into two.
    std::string decoded;
    decoded.reserve(path.size());
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] == '%' && i + 2 < path.size() && hex_value(path[i + 1]) >= 0 && hex_value(path[i + 2]) >= 0) {
            const char c = static_cast<char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
            if (c == '/') decoded += "%2F";
            else decoded += c;
            i += 2;
        } else {
            decoded += path[i];
        }
    }
    // 2. Segments: empty ones (from "//") and "." dropped, ".." pops (never above the root).
    std::vector<std::string_view> segments;
    std::string_view rest = decoded;
    std::string_view last;
    for (;;) {
        const auto slash = rest.find('/');
        last = rest.substr(0, slash);
        if (last == "..") {
            if (!segments.empty()) segments.pop_back();
        } else if (!last.empty() && last != ".") {
            segments.push_back(last);
        }
        if (slash == std::string_view::npos) break;
        rest = rest.substr(slash + 1);
    }
    // "/a/", "/a/." and "/a/b/.." all name a directory: keep the trailing slash.
    const bool trailing_slash = last.empty() || last == "." || last == "..";
    std::string out;
    out.reserve(decoded.size() + 1);
    for (const auto seg : segments) {
        out += '/';
        out += seg;
    }
    if (out.empty() || trailing_slash) out += '/';
    return out;
}

void rule_set::add_ip(ip_key net, unsigned prefix, std::uint32_t index) {
    auto it = std::find_if(ip_tables_.begin(), ip_tables_.end(), [&](const ip_table& t) { return t.prefix == prefix; });
    if (it == ip_tables_.end()) {
        ip_tables_.push_back({prefix, {}});
        it = ip_tables_.end() - 1;
    }
    it->nets.emplace(net, index);  // a repeated network keeps its first line
}

void rule_set::add_path(std::string prefix, std::uint32_t index) {
    auto it = std::find_if(path_tables_.begin(), path_tables_.end(),
                           [&](const path_table& t) { return t.length == prefix.size(); });
    if (it == path_tables_.end()) {
        path_tables_.push_back({prefix.size(), {}});
        it = path_tables_.end() - 1;
    }
    it->prefixes.emplace(std::move(prefix), index);
}

bool rule_set::parse(std::string_view text, rule_set& out, std::vector<parse_error>& errors) {
    rule_set rs;
    const std::size_t errors_before = errors.size();
    std::size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

        auto fail = [&](std::size_t column, std::string message) {
            errors.push_back({line_no, column, std::move(message)});
        };
        // Control characters would end up in audit reasons and logs; no rule needs them.
        const auto bad = std::find_if(line.begin(), line.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return (u < 0x20 && c != '\t') || u == 0x7f;
        });
        if (bad != line.end()) {
            fail(static_cast<std::size_t>(bad - line.begin()) + 1, "control character in the line");
            continue;
        }

        line_cursor cur{line};
        cur.skip_blanks();
        if (cur.at_end() || line[cur.pos] == '#') continue;
        const std::size_t kind_column = cur.column();
        const std::string_view kind = cur.word();
        cur.skip_blanks();
        const auto index = static_cast<std::uint32_t>(rs.rules_.size());

        if (kind == "ip") {
            const std::size_t column = cur.column();
            const std::string_view value = cur.word();
            cur.skip_blanks();
            if (value.empty()) {
                fail(column, "ip needs an address or a CIDR, e.g. ip 203.0.113.0/24");
                continue;
            }
            if (!cur.at_end()) {
                fail(cur.column(), "unexpected text after the address");
                continue;
            }
            const auto slash = value.find('/');
            const std::string_view addr_text = value.substr(0, slash);
            ip_key addr;
            if (addr_text.find('[') != std::string_view::npos || !parse_ip(addr_text, addr)) {
                fail(column, "\"" + std::string(addr_text) + "\" is not an IPv4 or IPv6 address");
                continue;
            }
            const bool v4 = addr_text.find(':') == std::string_view::npos;
            const unsigned max_len = v4 ? 32 : 128;
            unsigned len = max_len;
            if (slash != std::string_view::npos) {
                const std::string_view len_text = value.substr(slash + 1);
                const std::size_t len_column = column + slash + 1;
                const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
                if (len_text.empty() || ec != std::errc{} || end != len_text.data() + len_text.size() ||
                    (len_text.size() > 1 && len_text[0] == '0') || len > max_len) {
                    fail(len_column, "prefix length must be 0-" + std::to_string(max_len) + ", got \"" +
                                         std::string(len_text) + "\"");
                    continue;
                }
            }
            const unsigned prefix = v4 ? len + 96 : len;
            const ip_key net = mask(addr, prefix);
            if (!(net == addr)) {
                // Almost always a typo for the network; guessing either way would block the wrong range.
                fail(column, std::string(value) + " has host bits set; the network is " + format_key(net, v4) + "/" +
                                 std::to_string(len));
                continue;
            }
            rs.rules_.push_back({rule_kind::ip, line_no, "ip " + std::string(value)});
            rs.add_ip(net, prefix, index);
        } else if (kind == "path") {
            const std::size_t column = cur.column();
            const std::string_view value = cur.word();
            cur.skip_blanks();
            if (value.empty()) {
                fail(column, "path needs a prefix starting with /, e.g. path /admin");
                continue;
            }
            if (value.front() != '/') {
                fail(column, "a path prefix starts with /");
                continue;
            }
            if (!cur.at_end()) {
                fail(cur.column(), "unexpected text after the path (a path has no spaces)");
                continue;
            }
            rs.rules_.push_back({rule_kind::path, line_no, "path " + std::string(value)});
            // Stored normalized, the form requests are compared in ("/admin/" keeps its slash).
            rs.add_path(normalize_path(value), index);
        } else if (kind == "header") {
            const std::size_t name_column = cur.column();
            const std::string_view name = cur.word();
            if (name.empty()) {
                fail(name_column, "header needs a name and a value, e.g. header X-Debug 1");
                continue;
            }
            if (const auto bad_char = std::find_if(name.begin(), name.end(),
                                                   [](char c) { return !is_tchar(static_cast<unsigned char>(c)); });
                bad_char != name.end()) {
                fail(name_column + static_cast<std::size_t>(bad_char - name.begin()),
                     "invalid character in the header name");
                continue;
            }
            const std::size_t value_column = cur.column();
            const std::string_view value = cur.rest();
            if (value.empty()) {
                fail(value_column, "header " + std::string(name) + " needs a value to match");
                continue;
            }
            rs.rules_.push_back({rule_kind::header, line_no, "header " + std::string(name) + " " + std::string(value)});
            rs.header_rules_[to_lower(name)].push_back({std::string(value), index});
        } else if (kind == "user-agent") {
            const std::size_t column = cur.column();
            const std::string_view value = cur.rest();
            if (value.empty()) {
                fail(column, "user-agent needs a substring to look for");
                continue;
            }
            rs.rules_.push_back({rule_kind::user_agent, line_no, "user-agent " + std::string(value)});
            rs.user_agent_rules_.push_back({to_lower(value), index});
        } else {
            fail(kind_column, "unknown rule \"" + std::string(kind) + "\"; expected ip, path, header or user-agent");
        }
    }
    if (errors.size() != errors_before) return false;
    out = std::move(rs);
    return true;
}

void rule_set::match_path(std::string_view path, std::uint32_t& best) const {
    for (const auto& t : path_tables_) {
        if (t.length > path.size()) continue;
        // Heterogeneous lookup would avoid this copy, but paths are short and tables few.
        const auto it = t.prefixes.find(std::string(path.substr(0, t.length)));
        if (it != t.prefixes.end()) best = std::min(best, it->second);
    }
}

const rule* rule_set::match(const request_facts& request) const {
    // Rule indexes follow line order, so the lowest index is the first rule in the file.
    std::uint32_t best = no_match;
    if (!ip_tables_.empty()) {
        ip_key addr;
        if (parse_ip(request.client_address, addr)) {
            for (const auto& t : ip_tables_) {
                const auto it = t.nets.find(mask(addr, t.prefix));
                if (it != t.nets.end()) best = std::min(best, it->second);
            }
        }
    }
    if (!path_tables_.empty()) {
        match_path(request.path, best);
        match_path(normalize_path(request.path), best);
    }
    if (!header_rules_.empty() || !user_agent_rules_.empty()) {
        std::string name;
        for (const auto& h : request.headers) {
            name = to_lower(h.name);
            if (const auto it = header_rules_.find(name); it != header_rules_.end()) {
                for (const auto& r : it->second)
                    if (r.value == h.value) best = std::min(best, r.index);
            }
            if (name == "user-agent" && !user_agent_rules_.empty()) {
                const std::string ua = to_lower(h.value);
                for (const auto& r : user_agent_rules_)
                    if (ua.find(r.value) != std::string::npos) best = std::min(best, r.index);
            }
        }
    }
    return best == no_match ? nullptr : &rules_[best];
}

}  // namespace sentinel::denylist
