// Loading: files → KDL documents → ${ENV} substitution → include expansion → schema/semantic
// check (validator.cpp) → model. Also the canonical hash and restart detection.
#include "config/loader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "config/validator.hpp"

namespace sentinel::config {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t max_file_bytes = 16u << 20;  // a config larger than this is a mistake
constexpr std::size_t max_include_depth = 16;

constexpr std::string_view embedded_text = R"kdl(// Sentinel's built-in configuration, used when no config file is given.
// It needs no upstream: /status shows the status page, every other path a short greeting.
listeners {
    listener "default" { listen "127.0.0.1:8080"; }
}
routes {
    route "status" {
        match { path "/status"; }
        builtin "status"
    }
    route "welcome" {
        match { path-prefix "/"; }
        respond 200 {
            body "Sentinel is running. Try /status for the status page.\n"
            header "content-type" "text/plain; charset=utf-8"
        }
    }
}
)kdl";

bool read_file(const std::string& path, std::string& out, std::string& why) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        why = "it is a directory";
        return false;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        why = std::strerror(errno);
        return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    if (out.size() > max_file_bytes) {
        why = "larger than " + std::to_string(max_file_bytes >> 20) + " MiB";
        return false;
    }
    return true;
}

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

class loader {
public:
    load_result run(std::string text, const std::string& name, const std::string& base_dir, bool from_file) {
        source_file main;
        main.name = name;
        main.dir = base_dir;
        main.text = std::move(text);
        if (from_file) {
            read_files_.push_back(name);
            stack_.push_back(identity(name));
        }
        files_.push_back(std::move(main));
        if (parse(0)) expand(0);

        load_result result;
        if (!errors_.empty()) {
            result.errors = std::move(errors_);
            return result;
        }

        auto cfg = std::make_shared<config>();
        schema::check_context ctx;
        ctx.files = &files_;
        schema::check(ctx, nodes_, *cfg);
        if (!ctx.errors.empty()) {
            result.errors = std::move(ctx.errors);
            sort_by_position(result.errors);
            return result;
        }
        cfg->source_path = name;
        cfg->files = read_files_;
        cfg->hash = canonical_hash();
        cfg->redacted_text = kdl::print(merged(true));
        result.cfg = std::move(cfg);
        return result;
    }

private:
    // Semantic errors are found after the walk; present everything in reading order.
    void sort_by_position(std::vector<diagnostic>& errors) const {
        auto rank = [&](const diagnostic& d) {
            for (std::size_t i = 0; i < files_.size(); ++i)
                if (files_[i].name == d.file) return i;
            return files_.size();
        };
        std::stable_sort(errors.begin(), errors.end(), [&](const diagnostic& a, const diagnostic& b) {
            return std::tuple(rank(a), a.line, a.column) < std::tuple(rank(b), b.line, b.column);
        });
    }

    static std::string identity(const std::string& path) {
        std::error_code ec;
        auto p = fs::weakly_canonical(fs::absolute(path, ec), ec);
        return ec ? path : p.string();
    }

    void error(std::size_t file, const kdl::position& pos, std::string message) {
        diagnostic d;
        d.file = files_[file].name;
        d.line = pos.line;
        d.column = pos.column;
        d.message = std::move(message);
        d.excerpt = source_line(files_[file].text, pos.line);
        errors_.push_back(std::move(d));
    }

    // Parses files_[i] and substitutes ${ENV} in every string; false on a syntax error.
    bool parse(std::size_t i) {
        auto r = kdl::parse(files_[i].text);
        if (!r.doc) {
            diagnostic d;
            d.file = files_[i].name;
            if (r.error) {
                d.line = r.error->pos.line;
                d.column = r.error->pos.column;
                d.message = r.error->message;
                d.excerpt = r.error->excerpt;
            } else {
                d.message = "invalid KDL";
            }
            errors_.push_back(std::move(d));
            return false;
        }
        files_[i].doc = std::move(*r.doc);
        for (auto& n : files_[i].doc.nodes) substitute(i, n);
        return true;
    }

    void substitute(std::size_t file, kdl::node& n) {
        for (auto& v : n.arguments) substitute(file, v);
        for (auto& p : n.properties) substitute(file, p.val);
        for (auto& c : n.children) substitute(file, c);
    }

    // ${NAME} → the variable's value (error when unset); ${NAME:-default} → the value, or
    // `default` when unset or empty; $$ → a literal $. Any other $ is kept as written.
    void substitute(std::size_t file, kdl::value& v) {
        if (!v.is_string() || v.text.find('$') == std::string::npos) return;
        const std::string& s = v.text;
        std::string out;
        bool from_env = false;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] != '$' || i + 1 == s.size()) {
                out += s[i];
                continue;
            }
            if (s[i + 1] == '$') {
                out += '$';
                ++i;
                continue;
            }
            if (s[i + 1] != '{') {
                out += s[i];
                continue;
            }
            auto close = s.find('}', i + 2);
            if (close == std::string::npos) {
                error(file, v.pos, "unterminated \"${\" in \"" + s + "\"; write \"$$\" for a literal \"$\"");
                return;
            }
            std::string body = s.substr(i + 2, close - i - 2);
            std::string name = body;
            std::optional<std::string> fallback;
            if (auto sep = body.find(":-"); sep != std::string::npos) {
                name = body.substr(0, sep);
                fallback = body.substr(sep + 2);
            }
            bool valid = !name.empty() && is_name_start(name[0]);
            for (char c : name) valid = valid && is_name_char(c);
            if (!valid) {
                error(file, v.pos, "invalid environment variable reference \"${" + body +
                                       "}\"; expected ${NAME} or ${NAME:-default} (NAME: letters, digits, _)");
                return;
            }
            const char* value = std::getenv(name.c_str());
            if (value != nullptr && (*value != '\0' || !fallback)) {
                out += value;
                from_env = true;
            } else if (fallback) {
                out += *fallback;
            } else {
                error(file, v.pos, "environment variable \"" + name +
                                       "\" is not set (write \"${" + name + ":-default}\" to give a default)");
                return;
            }
            i = close;
        }
        v.text = std::move(out);
        // A value taken from the environment may be a secret: /config shows it redacted.
        if (from_env) env_values_.insert({file, v.pos.line, v.pos.column});
    }

    void expand(std::size_t file) {
        // Index-based: files_ grows while we iterate (std::deque keeps elements in place).
        for (std::size_t i = 0; i < files_[file].doc.nodes.size(); ++i) {
            const kdl::node& n = files_[file].doc.nodes[i];
            if (n.name != "include") {
                nodes_.push_back({&n, file});
                continue;
            }
            include(file, n);
        }
    }

    void include(std::size_t file, const kdl::node& n) {
        if (n.arguments.size() != 1 || !n.arguments[0].is_string() || !n.properties.empty() ||
            !n.children.empty() || n.arguments[0].annotation) {
            error(file, n.pos, "`include` takes exactly 1 argument (a file path string) and nothing else");
            return;
        }
        const kdl::value& arg = n.arguments[0];
        fs::path p(arg.text);
        if (p.is_relative()) p = fs::path(files_[file].dir) / p;
        std::string path = p.lexically_normal().string();
        std::string id = identity(path);
        for (std::size_t k = 0; k < stack_.size(); ++k) {
            if (stack_[k] != id) continue;
            std::string chain;
            for (std::size_t j = k; j < stack_.size(); ++j) chain += stack_[j] + " -> ";
            error(file, arg.pos, "include cycle: " + chain + id);
            return;
        }
        if (auto it = included_.find(id); it != included_.end()) {
            error(file, arg.pos, "\"" + path + "\" is already included (at " + it->second + ")");
            return;
        }
        if (stack_.size() >= max_include_depth) {
            error(file, arg.pos, "includes nested deeper than " + std::to_string(max_include_depth));
            return;
        }
        std::string text, why;
        if (!read_file(path, text, why)) {
            error(file, arg.pos, "cannot read included file \"" + path + "\": " + why);
            return;
        }
        included_[id] = files_[file].name + ":" + std::to_string(arg.pos.line) + ":" + std::to_string(arg.pos.column);
        read_files_.push_back(path);
        source_file f;
        f.name = path;
        f.dir = p.parent_path().string();
        f.text = std::move(text);
        files_.push_back(std::move(f));
        std::size_t idx = files_.size() - 1;
        stack_.push_back(id);
        if (parse(idx)) expand(idx);
        stack_.pop_back();
    }

    // The node as shown by /config: values from the environment and the arguments of
    // secret keys (schema `secret()`) replaced by "<redacted>".
    kdl::node redacted(const kdl::node& n, std::size_t file, const schema::node_spec* spec) const {
        kdl::node out = n;
        auto hide = [&](kdl::value& v) {
            if (spec != nullptr && spec->secret) {
                v = kdl::value{};
                v.type = kdl::value::kind::string;
                v.text = "<redacted>";
                return;
            }
            if (env_values_.count({file, v.pos.line, v.pos.column})) {
                v.type = kdl::value::kind::string;
                v.text = "<redacted>";
                v.integer.reset();
            }
        };
        for (auto& v : out.arguments) hide(v);
        for (auto& p : out.properties) hide(p.val);
        out.children.clear();
        for (const auto& c : n.children) {
            // Inside an opaque block (an agent's config) every value is treated like its block.
            const schema::node_spec* child_spec = spec != nullptr && spec->capture ? spec : nullptr;
            if (spec != nullptr && !spec->capture)
                for (const auto& cs : spec->children)
                    if (cs.name == c.name) child_spec = &cs;
            out.children.push_back(redacted(c, file, child_spec));
        }
        return out;
    }

    // The merged document (mergeable top-level blocks from several files concatenated),
    // redacted for display or as loaded.
    kdl::document merged(bool redact) const {
        kdl::document merged;
        for (const auto& t : nodes_) {
            const schema::node_spec* spec = nullptr;
            for (const auto& c : schema::root().children)
                if (c.name == t.node->name) spec = &c;
            kdl::node* into = nullptr;
            if (spec != nullptr && spec->mergeable)
                for (auto& m : merged.nodes)
                    if (m.name == t.node->name) into = &m;
            const kdl::node node = redact ? redacted(*t.node, t.file, spec) : *t.node;
            if (into != nullptr) {
                into->children.insert(into->children.end(), node.children.begin(), node.children.end());
            } else {
                merged.nodes.push_back(node);
            }
        }
        return merged;
    }

    // FNV-1a-64 of the canonical print of the merged, substituted document.
    std::string canonical_hash() const {
        std::string text = kdl::print(merged(false));
        std::uint64_t h = 0xcbf29ce484222325ull;
        for (unsigned char c : text) {
            h ^= c;
            h *= 0x100000001b3ull;
        }
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
        return buf;
    }

    std::deque<source_file> files_;
    std::vector<top_node> nodes_;
    std::set<std::tuple<std::size_t, std::uint32_t, std::uint32_t>> env_values_;  // (file, line, col)
    std::vector<diagnostic> errors_;
    std::vector<std::string> stack_;  // identities of the files being expanded
    std::map<std::string, std::string> included_;
    std::vector<std::string> read_files_;
};

void restart_walk(const schema::node_spec& spec, const std::string& prefix, const config& a, const config& b,
                  std::vector<std::string>& out) {
    std::string path = spec.name.empty() ? "" : (prefix.empty() ? "" : prefix + ".") + std::string(spec.name);
    if (spec.differs && spec.differs(a, b)) out.push_back(path);
    for (const auto& c : spec.children) restart_walk(c, path, a, b, out);
}

}  // namespace

std::string diagnostic::format() const {
    std::string out = file;
    if (line != 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
    out += ": error: " + message;
    if (line != 0 && !excerpt.empty()) {
        out += "\n  " + excerpt + "\n  ";
        // Columns count Unicode scalar values; keep tabs so the caret lines up.
        std::uint32_t col = 1;
        for (std::size_t i = 0; i < excerpt.size() && col < column; ++i) {
            unsigned char c = static_cast<unsigned char>(excerpt[i]);
            if ((c & 0xC0) == 0x80) continue;
            out += c == '\t' ? '\t' : ' ';
            ++col;
        }
        out += '^';
    }
    return out;
}

load_result load_file(const std::string& path) {
    std::string text, why;
    if (!read_file(path, text, why)) {
        load_result r;
        diagnostic d;
        d.file = path;
        d.message = "cannot read config file: " + why;
        r.errors.push_back(std::move(d));
        return r;
    }
    std::string dir = fs::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    return loader().run(std::move(text), path, dir, true);
}

load_result load_text(std::string_view text, const std::string& name, const std::string& base_dir) {
    return loader().run(std::string(text), name, base_dir.empty() ? "." : base_dir, false);
}

std::string_view embedded_default() { return embedded_text; }

std::vector<std::string> restart_required_changes(const config& current, const config& next) {
    std::vector<std::string> out;
    restart_walk(schema::root(), "", current, next, out);
    return out;
}

}  // namespace sentinel::config
