// The schema walk: one generic loop over (KDL node, schema node) pairs. Nothing here knows a
// key by name; everything key-specific lives in the table (schema/schema.cpp).
#include "config/validator.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <set>

#include <re2/re2.h>

#include "config/values.hpp"

namespace sentinel::config {

std::string source_line(std::string_view text, std::uint32_t line) {
    std::size_t start = 0;
    for (std::uint32_t l = 1; l < line; ++l) {
        auto nl = text.find('\n', start);
        if (nl == std::string_view::npos) return {};
        start = nl + 1;
    }
    auto end = text.find('\n', start);
    auto s = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    return std::string(s);
}

}  // namespace sentinel::config

namespace sentinel::config::schema {

void check_context::error(std::size_t in_file, const kdl::position& pos, std::string message) {
    diagnostic d;
    if (files != nullptr && in_file < files->size()) {
        d.file = (*files)[in_file].name;
        d.excerpt = sentinel::config::source_line((*files)[in_file].text, pos.line);
    }
    d.line = pos.line;
    d.column = pos.column;
    d.message = std::move(message);
    errors.push_back(std::move(d));
}

std::string check_context::where(const location& loc) const {
    std::string f = files != nullptr && loc.file < files->size() ? (*files)[loc.file].name : "";
    return f + ":" + std::to_string(loc.pos.line) + ":" + std::to_string(loc.pos.column);
}

void check_output_path(check_context& ctx, const std::string& path, const kdl::node& node) {
    if (path == "-" || path.empty()) return;
    namespace fs = std::filesystem;
    kdl::position pos = node.pos;
    for (const auto& c : node.children)
        if (c.name == "path" && !c.arguments.empty()) pos = c.arguments[0].pos;
    fs::path p(path);
    fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        ctx.error(pos, "the directory of \"" + path + "\" does not exist (\"" + dir.string() + "\")");
        return;
    }
    if (fs::exists(p, ec)) {
        if (fs::is_directory(p, ec)) {
            ctx.error(pos, "\"" + path + "\" is a directory; expected a file path or \"-\"");
        } else if (::access(p.c_str(), W_OK) != 0) {
            ctx.error(pos, "\"" + path + "\" is not writable");
        }
    } else if (::access(dir.c_str(), W_OK) != 0) {
        ctx.error(pos, "cannot create \"" + path + "\": directory \"" + dir.string() + "\" is not writable");
    }
}

namespace {

std::string kind_name(const kdl::value& v) {
    switch (v.type) {
    case kdl::value::kind::string: return "the string \"" + v.text + "\"";
    case kdl::value::kind::integer: return "the integer " + v.text;
    case kdl::value::kind::decimal: return "the number " + v.text;
    case kdl::value::kind::boolean: return v.boolean ? "#true" : "#false";
    case kdl::value::kind::null: return "#null";
    }
    return "a value";
}

std::string qt(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string did_you_mean(const std::string& suggestion) {
    return suggestion.empty() ? "" : "; did you mean " + qt(suggestion) + "?";
}


// Stands in for an argument that failed to convert, so the walk can continue inside the block.
typed_value placeholder(value_kind kind, const kdl::position& pos) {
    typed_value v;
    v.kind = kind;
    v.pos = pos;
    return v;
}

class walker {
public:
    walker(check_context& ctx) : ctx_(ctx) {}

    // Converts one KDL value; reports and returns nullopt on error.
    std::optional<typed_value> convert(const kdl::value& v, const value_spec& spec, std::string_view key) {
        typed_value out;
        out.kind = spec.kind;
        out.pos = v.pos;
        auto fail = [&](std::string msg) -> std::optional<typed_value> {
            ctx_.error(v.pos, "`" + std::string(key) + "`: " + msg);
            return std::nullopt;
        };
        if (v.annotation)
            return fail("type annotations like \"(" + *v.annotation + ")\" are not supported here");
        const std::string expected = describe(spec);
        if (spec.kind == value_kind::integer) {
            if (v.type != kdl::value::kind::integer)
                return fail("expected an " + expected + ", found " + kind_name(v));
            if (!v.integer || *v.integer < spec.min || *v.integer > spec.max)
                return fail("value " + v.text + " is out of range; expected an " + expected);
            out.num = *v.integer;
            return out;
        }
        if (spec.kind == value_kind::boolean) {
            if (v.type != kdl::value::kind::boolean)
                return fail("expected a boolean (#true or #false), found " + kind_name(v));
            out.boolean = v.boolean;
            return out;
        }
        if (v.type != kdl::value::kind::string) {
            std::string hint;
            if (spec.kind == value_kind::duration && v.type == kdl::value::kind::integer)
                hint = " (durations need a unit, e.g. \"" + v.text + "s\")";
            if (spec.kind == value_kind::size && v.type == kdl::value::kind::integer)
                hint = " (sizes need a unit, e.g. \"" + v.text + "KiB\")";
            return fail("expected a " + expected + ", found " + kind_name(v) + hint);
        }
        const std::string& s = v.text;
        out.str = s;
        switch (spec.kind) {
        case value_kind::string:
            return out;
        case value_kind::duration: {
            auto d = parse_duration(s);
            if (!d)
                return fail("invalid duration " + qt(s) +
                            "; expected an integer followed by ms, s, m, h or d (e.g. \"30s\")");
            if (d->count() < spec.min)
                return fail("duration " + qt(s) + " is out of range; expected a " + expected);
            out.num = d->count();
            return out;
        }
        case value_kind::size: {
            auto n = parse_size(s);
            if (!n)
                return fail("invalid size " + qt(s) +
                            "; expected an integer followed by B, KiB, MiB or GiB (e.g. \"10MiB\")");
            if (*n < static_cast<std::uint64_t>(spec.min) ||
                *n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                return fail("size " + qt(s) + " is out of range; expected a " + expected);
            out.num = static_cast<std::int64_t>(*n);
            return out;
        }
        case value_kind::listen_address:
        case value_kind::endpoint_address: {
            auto a = parse_socket_address(s);
            if (!a.address) return fail("invalid address " + qt(s) + ": " + a.error);
            if (spec.kind == value_kind::listen_address && a.kind == host_kind::name)
                return fail("listen address " + qt(s) +
                            " must be an IP literal (e.g. \"0.0.0.0:8080\" or \"[::]:8080\")");
            if (spec.kind == value_kind::endpoint_address && a.address->port == 0)
                return fail("invalid address " + qt(s) + ": port must be 1-65535");
            out.address = *a.address;
            return out;
        }
        case value_kind::cidr: {
            auto c = parse_cidr(s);
            if (!c.network) return fail("invalid CIDR " + qt(s) + ": " + c.error);
            out.network = *c.network;
            return out;
        }
        case value_kind::enumeration: {
            for (std::size_t i = 0; i < spec.choices.size(); ++i) {
                if (spec.choices[i] == s) {
                    out.num = static_cast<std::int64_t>(i);
                    return out;
                }
            }
            return fail("unknown value " + qt(s) + "; expected " + expected +
                        did_you_mean(closest_match(s, spec.choices)));
        }
        case value_kind::header_name:
            if (!is_http_token(s)) return fail("invalid header name " + qt(s));
            return out;
        case value_kind::header_value:
            if (!is_header_value(s)) return fail("header value must not contain CR, LF or NUL");
            return out;
        case value_kind::host_pattern: {
            std::string_view h = s;
            if (h.starts_with("*.")) h.remove_prefix(2);
            bool ok = !h.empty() && h.find('*') == std::string_view::npos &&
                      parse_socket_address(std::string(h) + ":1").kind == host_kind::name &&
                      parse_socket_address(std::string(h) + ":1").address.has_value();
            if (!ok)
                return fail("invalid host " + qt(s) +
                            "; expected a host name without port, optionally starting with \"*.\"");
            return out;
        }
        case value_kind::http_path:
            if (s.empty() || s.front() != '/' ||
                s.find_first_of(std::string_view(" \t\r\n\0?#", 8)) != std::string::npos)
                return fail("invalid path " + qt(s) +
                            "; expected a path starting with \"/\" (no spaces, query or fragment)");
            return out;
        case value_kind::method:
            if (!is_http_token(s) ||
                std::any_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
                return fail("invalid method " + qt(s) + "; expected an upper-case token like \"GET\"");
            return out;
        case value_kind::regex: {
            RE2::Options options;
            options.set_log_errors(false);
            RE2 re(s, options);
            if (!re.ok()) return fail("invalid regular expression " + qt(s) + ": " + re.error());
            return out;
        }
        case value_kind::retry_condition: {
            static constexpr std::string_view kinds[] = {"connect-failure", "reset", "timeout"};
            for (std::size_t i = 0; i < std::size(kinds); ++i) {
                if (s == kinds[i]) {
                    out.num = static_cast<std::int64_t>(i);
                    return out;
                }
            }
            int status = 0;
            const bool digits = s.size() == 3 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (digits) status = std::stoi(s);
            if (status < 400 || status > 599)
                return fail("unknown retry condition " + qt(s) + "; expected " + expected +
                            did_you_mean(closest_match(s, std::vector<std::string_view>(std::begin(kinds), std::end(kinds)))));
            out.num = 1000 + status;  // statuses are stored offset by 1000, conditions as 0-2
            return out;
        }
        case value_kind::reference:
            if (s.empty()) return fail("expected the id of an " + std::string(spec.ref_kind) + ", found \"\"");
            ctx_.references.push_back({std::string(spec.ref_kind), s, {ctx_.file, v.pos}});
            return out;
        case value_kind::input_path: {
            if (s.empty()) return fail("expected a file path, found \"\"");
            std::filesystem::path p(s);
            if (p.is_relative() && ctx_.files != nullptr && ctx_.file < ctx_.files->size())
                p = std::filesystem::path((*ctx_.files)[ctx_.file].dir) / p;
            out.str = p.lexically_normal().string();
            std::error_code ec;
            if (!std::filesystem::is_regular_file(p, ec))
                return fail("file " + qt(out.str) + " does not exist or is not a regular file");
            if (::access(p.c_str(), R_OK) != 0) return fail("file " + qt(out.str) + " is not readable");
            return out;
        }
        case value_kind::output_path:
            if (s.empty()) return fail("expected \"-\" or a file path, found \"\"");
            if (s != "-") {
                std::filesystem::path p(s);
                if (p.is_relative() && ctx_.files != nullptr && ctx_.file < ctx_.files->size())
                    p = std::filesystem::path((*ctx_.files)[ctx_.file].dir) / p;
                out.str = p.lexically_normal().string();
            }
            return out;
        case value_kind::integer:
        case value_kind::boolean:
            break;
        }
        return out;
    }

    // Checks the node's own shape (annotation, properties, arguments); returns converted args,
    // padded to the declared arity so `enter` functions can always index them.
    std::vector<typed_value> check_args(const kdl::node& n, const node_spec& spec, bool& ok) {
        ok = true;
        if (n.annotation) {
            ctx_.error(n.pos, "`" + n.name + "`: type annotations like \"(" + *n.annotation +
                                  ")\" are not supported here");
            ok = false;
        }
        for (const auto& p : n.properties) {
            const bool known = std::any_of(spec.props.begin(), spec.props.end(),
                                           [&](const prop_spec& ps) { return ps.name == p.name; });
            if (known) continue;
            std::vector<std::string_view> names;
            for (const auto& ps : spec.props) names.push_back(ps.name);
            ctx_.error(p.pos, "`" + n.name + "` has no property \"" + p.name + "\"" +
                                  (spec.props.empty() ? (spec.args.empty() ? "" : "; values are given as arguments")
                                                      : did_you_mean(closest_match(p.name, names))));
            ok = false;
        }
        std::vector<typed_value> out;
        const std::size_t fixed = spec.args.size();
        const std::size_t count = n.arguments.size();
        bool arity_ok = spec.variadic ? count >= fixed : count == fixed;
        if (!arity_ok) {
            std::string want;
            if (fixed == 0) {
                want = "no arguments";
            } else {
                std::string types;
                for (std::size_t i = 0; i < fixed; ++i)
                    types += (i ? ", " : "") + std::string(spec.args[i].label);
                want = (spec.variadic ? "at least " : "exactly ") + std::to_string(fixed) +
                       (fixed == 1 ? " argument (" : " arguments (") + types + (spec.variadic ? ", ...)" : ")");
            }
            ctx_.error(n.pos, "`" + n.name + "` takes " + want + ", found " + std::to_string(count));
            ok = false;
        }
        for (std::size_t i = 0; i < count && fixed > 0; ++i) {
            if (i >= fixed && !spec.variadic) break;
            const value_spec& vs = spec.args[std::min(i, fixed - 1)];
            auto tv = convert(n.arguments[i], vs, n.name);
            if (tv) out.push_back(std::move(*tv));
            else {
                ok = false;
                out.push_back(placeholder(vs.kind, n.arguments[i].pos));
            }
        }
        while (out.size() < fixed) out.push_back(placeholder(spec.args[out.size()].kind, n.pos));
        for (const auto& ps : spec.props) {
            const std::string name(ps.name);
            const kdl::property* p = n.find_property(name);  // KDL: the right-most one wins
            std::optional<typed_value> tv;
            if (p != nullptr) tv = convert(p->val, ps.value, n.name + " " + name + "=");
            else if (ps.default_value) tv = convert(*ps.default_value, ps.value, name);
            if (!tv) {
                if (p != nullptr) ok = false;
                tv = placeholder(ps.value.kind, p != nullptr ? p->pos : n.pos);
                tv->present = false;
            }
            out.push_back(std::move(*tv));
        }
        return out;
    }

    void walk_block(const kdl::node* n, const node_spec& spec, void* target) {
        // `n` is null for an implicit block that is absent: only defaults apply.
        std::map<std::string_view, location> seen;
        std::vector<std::string_view> names;
        for (const auto& c : spec.children) names.push_back(c.name);
        if (n != nullptr) {
            for (const auto& child : n->children) walk_child(child, spec, names, seen, target);
        }
        apply_defaults(n, spec, seen, target);
        if (n != nullptr && spec.finish) spec.finish(ctx_, target, *n);
    }

    void walk_top(const std::vector<sentinel::config::top_node>& nodes, config& out) {
        const node_spec& root = schema::root();
        std::map<std::string_view, location> seen;
        std::vector<std::string_view> names;
        for (const auto& c : root.children) names.push_back(c.name);
        for (const auto& t : nodes) {
            ctx_.file = t.file;
            walk_child(*t.node, root, names, seen, &out);
        }
        ctx_.file = 0;
        apply_defaults(nullptr, root, seen, &out);
    }

private:
    void walk_child(const kdl::node& child, const node_spec& parent, const std::vector<std::string_view>& names,
                    std::map<std::string_view, location>& seen, void* target) {
        const node_spec* spec = nullptr;
        for (const auto& c : parent.children)
            if (c.name == child.name) spec = &c;
        if (spec == nullptr) {
            std::string in = parent.name.empty() ? "at the top level" : "in `" + std::string(parent.name) + "`";
            std::string expected;
            for (auto nm : names) expected += (expected.empty() ? "" : ", ") + std::string(nm);
            ctx_.error(child.pos, "unknown node \"" + child.name + "\" " + in + "; expected one of: " +
                                      expected + did_you_mean(closest_match(child.name, names)));
            return;
        }
        auto [it, inserted] = seen.emplace(spec->name, location{ctx_.file, child.pos});
        if (!inserted && !spec->repeatable && !spec->mergeable) {
            ctx_.error(child.pos, "duplicate `" + child.name + "` (first at " + ctx_.where(it->second) +
                                      "); it may appear only once" +
                                      (spec->variadic ? ", with several values as arguments" : ""));
            return;
        }
        if (spec->capture != nullptr) {
            spec->capture(ctx_, target, child);
            return;
        }
        bool ok = true;
        auto args = check_args(child, *spec, ok);
        if (!spec->id_kind.empty() && !args.empty() && !args[0].str.empty()) {
            auto& ids = ctx_.ids[std::string(spec->id_kind)];
            auto [prev, fresh] = ids.emplace(args[0].str, location{ctx_.file, args[0].pos});
            if (!fresh) {
                ctx_.error(args[0].pos, "duplicate " + std::string(spec->id_kind) + " id \"" + args[0].str +
                                            "\" (first defined at " + ctx_.where(prev->second) + ")");
            }
        }
        if (spec->block) {
            void* inner = spec->enter(target, args);
            walk_block(&child, *spec, inner);
        } else {
            if (!child.children.empty()) {
                ctx_.error(child.pos, "`" + child.name + "` takes no children block");
                ok = false;
            }
            if (ok) spec->apply(target, args);
        }
    }

    void apply_defaults(const kdl::node* n, const node_spec& spec, const std::map<std::string_view, location>& seen,
                        void* target) {
        for (const auto& c : spec.children) {
            if (seen.count(c.name)) continue;
            if (c.required && n != nullptr) {
                std::string what = std::string(spec.name);
                if (!n->arguments.empty() && n->arguments[0].is_string())
                    what += " \"" + n->arguments[0].text + "\"";
                ctx_.error(n->pos, "`" + what + "` is missing required `" + std::string(c.name) + "` (" +
                                       describe(c.args.empty() ? value_spec{} : c.args[0]) + ")");
                continue;
            }
            if (c.block && c.implicit) {
                walk_block(nullptr, c, c.enter(target, {}));
            } else if (!c.block && c.default_value) {
                auto tv = convert(*c.default_value, c.args[0], c.name);
                if (!tv) continue;
                std::vector<typed_value> args{std::move(*tv)};
                for (const auto& ps : c.props) {
                    std::optional<typed_value> pv;
                    if (ps.default_value) pv = convert(*ps.default_value, ps.value, ps.name);
                    if (!pv) {
                        pv = placeholder(ps.value.kind, args[0].pos);
                        pv->present = false;
                    }
                    args.push_back(std::move(*pv));
                }
                c.apply(target, args);
            }
        }
    }

    check_context& ctx_;
};

}  // namespace

void check(check_context& ctx, const std::vector<sentinel::config::top_node>& nodes, config& out) {
    walker w(ctx);
    w.walk_top(nodes, out);

    // References.
    for (const auto& ref : ctx.references) {
        auto& ids = ctx.ids[ref.kind];
        if (ids.count(ref.id)) continue;
        std::vector<std::string> known;
        for (const auto& [id, loc] : ids) known.push_back(id);
        ctx.error(ref.loc.file, ref.loc.pos,
                  "unknown " + ref.kind + " \"" + ref.id + "\"" +
                      (known.empty() ? "; no " + ref.kind + " is defined" : "") +
                      did_you_mean(closest_match(ref.id, known)));
    }

    for (const auto& u : ctx.upgrade_routes) {
        auto it = std::find_if(out.upstreams.begin(), out.upstreams.end(),
                               [&](const upstream_config& up) { return up.id == u.upstream; });
        if (it != out.upstreams.end() && it->protocol == upstream_protocol::h2)
            ctx.error(u.loc.file, u.loc.pos,
                      "`" + u.key + "` in route \"" + u.route + "\" needs an HTTP/1.1 upstream; upstream \"" +
                          u.upstream + "\" has protocol \"h2\" (upgrades to HTTP/2 upstreams are not supported)");
    }

    // Two sockets on the same address (port 0 = "any free port" never collides).
    auto wildcard = [](const std::string& h) { return h == "0.0.0.0" || h == "::"; };
    auto v6 = [](const std::string& h) { return h.find(':') != std::string::npos; };
    for (std::size_t i = 0; i < ctx.listens.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            const auto& a = ctx.listens[j];
            const auto& b = ctx.listens[i];
            if (a.address.port == 0 || a.address.port != b.address.port) continue;
            bool clash = a.address.host == b.address.host ||
                         (v6(a.address.host) == v6(b.address.host) &&
                          (wildcard(a.address.host) || wildcard(b.address.host)));
            if (!clash) continue;
            ctx.error(b.loc.file, b.loc.pos,
                      b.what + " listens on \"" + b.address.text + "\", which overlaps " + a.what + " on \"" +
                          a.address.text + "\" (" + ctx.where(a.loc) + ")");
            break;
        }
    }
}

}  // namespace sentinel::config::schema
