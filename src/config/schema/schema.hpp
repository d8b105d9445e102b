// The config schema: every block and key of the config language, declared once.
//
// Validation (validator.cpp), defaults, restart detection and the generated reference
// (reference.cpp → docs/config-reference.md) all read this one table, so a key cannot be
// documented without being parsed, or parsed without being applied: each leaf carries the
// `apply` function that writes it into the model, each block the `enter` function that selects
// (or creates) the model struct its children write into.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/kdl/document.hpp"
#include "config/model/config.hpp"

namespace sentinel::config::schema {

enum class value_kind {
    string,          // any string
    integer,         // KDL integer within [min, max]
    boolean,         // #true / #false
    duration,        // "30s"; min/max in milliseconds
    size,            // "10MiB"; min/max in bytes
    listen_address,  // IP literal + port ("0.0.0.0:8080", "[::]:8080"); port 0 = any free port
    endpoint_address,  // "host:port", "[v6]:port" or "name:port"; port 1-65535
    cidr,            // "10.0.0.0/8"
    enumeration,     // one of `choices`; stored as the index into `choices`
    header_name,     // RFC 9110 token
    header_value,    // no CR/LF/NUL
    host_pattern,    // "example.com" or "*.example.com"
    http_path,       // starts with '/'
    method,          // RFC 9110 token, upper case
    regex,           // RE2 syntax, compiled at load time
    retry_condition, // "connect-failure", "reset", "timeout" or a status code 400-599 ("503")
    reference,       // the id of another object (`ref_kind`), resolved after the walk
    output_path,     // "-" (stdout) or a file path, resolved against the declaring file
    input_path,      // an existing, readable file, resolved against the declaring file
};

struct value_spec {
    value_kind kind = value_kind::string;
    std::int64_t min = 0;
    std::int64_t max = 0;
    std::vector<std::string_view> choices;  // enumeration
    std::string_view ref_kind;              // reference: "upstream"
    std::string_view label;                 // name of the argument in docs ("id", "status", ...)
};

// A value after type conversion (and, for strings, after ${ENV} substitution).
struct typed_value {
    value_kind kind = value_kind::string;
    std::string str;      // strings, enums (the chosen name), references, paths
    std::int64_t num = 0;  // integer, duration (ms), size (bytes), enumeration (index)
    bool boolean = false;
    socket_address address;
    cidr network;
    kdl::position pos;
    bool present = true;  // false: a property that was not written and has no default
};

// A property (`weight=2`): named, optional, converted like an argument.
struct prop_spec {
    std::string_view name;
    value_spec value;
    std::optional<kdl::value> default_value;
    std::string_view doc;
};

using args_view = std::span<const typed_value>;
using apply_fn = void (*)(void* target, args_view args);
using enter_fn = void* (*)(void* parent, args_view args);
struct check_context;  // defined by the validator; lets finish hooks report errors
using finish_fn = void (*)(check_context& ctx, void* target, const kdl::node& node);
using differs_fn = bool (*)(const config& a, const config& b);
// Opaque blocks: receive their node unchecked (an agent's `config {}`, checked by the agent).
using capture_fn = void (*)(check_context& ctx, void* target, const kdl::node& node);

struct node_spec {
    std::string_view name;
    std::string_view doc;
    std::vector<value_spec> args;  // positional arguments
    // Properties, passed to `apply`/`enter` after the positional arguments in declared order
    // (absent ones with their default, or with `present == false`). Only on nodes without
    // variadic arguments, so their position is fixed.
    std::vector<prop_spec> props;
    bool variadic = false;         // the last argument repeats (one or more)
    std::optional<kdl::value> default_value;  // leaves with one argument: applied when absent
    std::string_view default_doc;  // shown in the reference when there is no default_value
    bool required = false;
    bool repeatable = false;  // may appear several times in its block
    bool mergeable = false;   // top-level container: occurrences (across includes) concatenate
    bool implicit = false;    // block that is entered even when absent, so its defaults apply
    bool restart = false;     // a change needs a process restart (reload reports it)
    bool secret = false;      // never shown: /config prints "<redacted>" instead
    std::string_view id_kind;  // block whose first argument is a unique id of this kind
    bool block = false;        // has a children block (`children` lists what it may contain)
    bool children_optional = false;  // block whose children block may be omitted
    std::vector<node_spec> children;
    apply_fn apply = nullptr;
    enter_fn enter = nullptr;
    finish_fn finish = nullptr;
    capture_fn capture = nullptr;  // set: an opaque block, handed over as written
    differs_fn differs = nullptr;  // restart keys: whether two configs differ in this key

    // Fluent setters for the table in schema.cpp.
    node_spec& with_doc(std::string_view d) { doc = d; return *this; }
    node_spec& arg(value_spec v) { args.push_back(std::move(v)); return *this; }
    node_spec& many() { variadic = true; return *this; }
    node_spec& prop(std::string_view n, value_spec v, std::string_view d,
                    std::optional<kdl::value> def = std::nullopt) {
        props.push_back({n, std::move(v), std::move(def), d});
        return *this;
    }
    node_spec& def(kdl::value v) { default_value = std::move(v); return *this; }
    node_spec& def_doc(std::string_view d) { default_doc = d; return *this; }
    node_spec& req() { required = true; return *this; }
    node_spec& repeat() { repeatable = true; return *this; }
    node_spec& merge() { mergeable = true; return *this; }
    node_spec& implied() { implicit = true; return *this; }
    node_spec& needs_restart(differs_fn f) { restart = true; differs = f; return *this; }
    node_spec& ids(std::string_view kind) { id_kind = kind; return *this; }
    node_spec& hidden() { secret = true; return *this; }
    node_spec& optional_children() { children_optional = true; return *this; }
    node_spec& on_finish(finish_fn f) { finish = f; return *this; }
    node_spec& opaque(capture_fn f) { capture = f; block = true; children_optional = true; return *this; }
};

// The root: its children are the top-level blocks.
const node_spec& root();

// Human-readable name of a value's type ("duration", "integer 0-1024", ...), for errors and docs.
std::string describe(const value_spec& v);

}  // namespace sentinel::config::schema
