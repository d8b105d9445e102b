#include "config/reference.hpp"

#include "config/schema/schema.hpp"

namespace sentinel::config {
namespace {

using schema::node_spec;

std::string cell(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '|') out += "\\|";
        else if (c == '\n') out += ' ';
        else out += c;
    }
    return out;
}

std::string literal(const kdl::value& v) {
    switch (v.type) {
    case kdl::value::kind::string: {
        std::string s = "\"";
        for (char c : v.text) {
            if (c == '\n') s += "\\n";
            else if (c == '"' || c == '\\') s += std::string("\\") + c;
            else s += c;
        }
        return s + "\"";
    }
    case kdl::value::kind::boolean: return v.boolean ? "#true" : "#false";
    case kdl::value::kind::null: return "#null";
    default: return v.text;
    }
}

std::string anchor(const std::string& path) {
    std::string a;
    for (char c : path)
        if (c != '.') a += c;  // GitHub's heading slug drops the dots of `routes.route`
    return a;
}

std::string value_column(const node_spec& n) {
    if (n.args.empty()) return "";
    std::string s;
    for (std::size_t i = 0; i < n.args.size(); ++i) {
        if (i) s += "; ";
        s += "`" + std::string(n.args[i].label) + "`: " + schema::describe(n.args[i]);
    }
    if (n.variadic) s += " (one or more)";
    for (const auto& p : n.props) {
        s += "; property `" + std::string(p.name) + "=`: " + schema::describe(p.value);
        if (p.default_value) s += ", default `" + literal(*p.default_value) + "`";
        s += " — " + std::string(p.doc);
    }
    return s;
}

std::string usage(const node_spec& n) {
    std::string s = std::string(n.name);
    for (std::size_t i = 0; i < n.args.size(); ++i) s += " <" + std::string(n.args[i].label) + ">";
    if (n.variadic) s += "...";
    for (const auto& p : n.props) s += " [" + std::string(p.name) + "=<" + std::string(p.value.label) + ">]";
    if (n.block) s += n.children_optional ? " [{ ... }]" : " { ... }";
    return s;
}

void render_block(const node_spec& b, const std::string& path, std::string& out) {
    if (!path.empty()) {
        out += "\n## `" + path + "`\n\n";
        out += "Usage: `" + usage(b) + "`";
        if (!b.args.empty()) out += " — " + value_column(b);
        out += "\n\n" + std::string(b.doc) + "\n\n";
        std::vector<std::string> flags;
        if (b.required) flags.push_back("required");
        if (b.repeatable) flags.push_back("repeatable");
        if (b.mergeable) flags.push_back("may appear in several files; their children concatenate");
        if (b.restart) flags.push_back("adding or removing it needs a restart");
        if (!flags.empty()) {
            out += "This block is ";
            for (std::size_t i = 0; i < flags.size(); ++i) out += (i ? ", " : "") + flags[i];
            out += ".\n\n";
        }
    }
    out += "| Node | Value | Default | Required | Repeatable | Restart | Description |\n";
    out += "|---|---|---|---|---|---|---|\n";
    for (const auto& c : b.children) {
        std::string child_path = path.empty() ? std::string(c.name) : path + "." + std::string(c.name);
        std::string name = c.block ? "[`" + std::string(c.name) + "`](#" + anchor(child_path) + ")"
                                   : "`" + std::string(c.name) + "`";
        std::string value = c.block ? (c.args.empty() ? "block" : "block; " + value_column(c)) : value_column(c);
        std::string def = c.default_value ? "`" + literal(*c.default_value) + "`"
                          : !c.default_doc.empty() ? std::string(c.default_doc)
                          : "—";
        out += "| " + name + " | " + cell(value) + " | " + cell(def) + " | " + (c.required ? "yes" : "no") +
               " | " + (c.repeatable ? "yes" : "no") + " | " + (c.restart ? "yes" : "no") + " | " +
               cell(c.doc) + " |\n";
    }
    for (const auto& c : b.children) {
        if (!c.block) continue;
        render_block(c, path.empty() ? std::string(c.name) : path + "." + std::string(c.name), out);
    }
}

}  // namespace

std::string config_reference_markdown() {
    std::string out;
    out += "# Configuration reference\n\n";
    out += "<!-- Generated from the schema table in src/config/schema/schema.cpp. Do not edit by hand;\n"
           "     regenerate with: build/src/config/config_docgen > docs/config-reference.md -->\n\n";
    out += R"md(Sentinel reads one [KDL v2](https://kdl.dev) file (`sentinel run -c FILE`). The rules:

- Every block is optional; what is not written takes the default listed below. No `admin`
  block means no admin listener; no `access-log` block means no access log.
- A node name is a setting; names are kebab-case. **Unknown node names, properties and enum
  values are errors at any depth**, as are wrong argument counts and types. A setting is either
  applied or rejected; nothing is parsed and ignored.
- Durations are strings with exactly one unit: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"` (integer
  amount; no bare numbers). Sizes likewise: `"512B"`, `"8KiB"`, `"10MiB"`, `"1GiB"`.
- Ids are the first argument (`listener "public"`, `route "api"`, `upstream "api"`), unique per
  kind; references are by id (`upstream "api"` inside a route).
- Within `match`, different matchers are ANDed and the values of one matcher are ORed.
- `include "other.kdl"` (top level only) reads another file as if its nodes were written in
  place; the path is relative to the including file; cycles and repeated includes are errors.
  `listeners`, `routes` and `upstreams` may appear in several files (children concatenate);
  every other top-level block may appear once overall.
- String values may use environment variables: `${NAME}` (an error when `NAME` is unset),
  `${NAME:-default}` (the default when unset or empty), and `$$` for a literal `$`. A `$` not
  followed by `{` or `$` is kept as written. Substitution happens in strings only, so numbers
  and booleans cannot come from the environment.
- Settings marked *Restart* take effect only when the process restarts; a reload that
  changes them reports which ones.

## Top level

)md";
    render_block(schema::root(), "", out);
    return out;
}

}  // namespace sentinel::config
