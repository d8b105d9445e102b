// Building blocks of the schema table (schema.cpp, schema_tls.cpp): value specs, defaults,
// the apply/enter functions that write typed values into model fields, and node constructors.
// Internal to the schema; nothing outside src/config/schema includes this.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "config/schema/schema.hpp"
#include "config/validator.hpp"

namespace sentinel::config::schema::builders {

// ---- value specs -------------------------------------------------------------------------

inline value_spec spec(value_kind kind, std::string_view label, std::int64_t min = 0, std::int64_t max = 0) {
    value_spec v;
    v.kind = kind;
    v.label = label;
    v.min = min;
    v.max = max;
    return v;
}

inline value_spec integer(std::int64_t min, std::int64_t max, std::string_view label = "n") {
    return spec(value_kind::integer, label, min, max);
}
inline value_spec boolean() { return spec(value_kind::boolean, "bool"); }
inline value_spec string(std::string_view label) { return spec(value_kind::string, label); }
inline value_spec duration_v(std::int64_t min_ms) { return spec(value_kind::duration, "duration", min_ms); }
inline value_spec size_v() { return spec(value_kind::size, "size", 1); }
inline value_spec listen_address() { return spec(value_kind::listen_address, "address"); }
inline value_spec endpoint_address() { return spec(value_kind::endpoint_address, "address"); }
inline value_spec cidr_v() { return spec(value_kind::cidr, "cidr"); }
inline value_spec enumeration(std::vector<std::string_view> choices, std::string_view label = "name") {
    value_spec v = spec(value_kind::enumeration, label);
    v.choices = std::move(choices);
    return v;
}
inline value_spec header_name() { return spec(value_kind::header_name, "name"); }
inline value_spec header_value_v() { return spec(value_kind::header_value, "value"); }
inline value_spec host_pattern() { return spec(value_kind::host_pattern, "host"); }
inline value_spec http_path() { return spec(value_kind::http_path, "path"); }
inline value_spec method() { return spec(value_kind::method, "method"); }
inline value_spec reference(std::string_view kind) {
    value_spec v = spec(value_kind::reference, "id");
    v.ref_kind = kind;
    return v;
}
inline value_spec output_path() { return spec(value_kind::output_path, "path"); }
inline value_spec input_path(std::string_view label = "path") { return spec(value_kind::input_path, label); }
inline value_spec id() { return spec(value_kind::string, "id"); }
inline value_spec regex() { return spec(value_kind::regex, "regex"); }
inline value_spec retry_condition_v() { return spec(value_kind::retry_condition, "condition"); }

inline kdl::value kstr(std::string_view s) {
    kdl::value v;
    v.type = kdl::value::kind::string;
    v.text = std::string(s);
    return v;
}
inline kdl::value kint(std::int64_t n) {
    kdl::value v;
    v.type = kdl::value::kind::integer;
    v.text = std::to_string(n);
    v.integer = n;
    return v;
}
inline kdl::value kbool(bool b) {
    kdl::value v;
    v.type = kdl::value::kind::boolean;
    v.boolean = b;
    v.text = b ? "#true" : "#false";
    return v;
}

// ---- writing typed values into model fields ----------------------------------------------

template <class T>
struct member_traits;
template <class C, class M>
struct member_traits<M C::*> {
    using owner = C;
    using type = M;
};

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class F>
void assign(F& field, args_view a) {
    const typed_value& v = a[0];
    if constexpr (std::is_same_v<F, bool>) {
        field = v.boolean;
    } else if constexpr (std::is_same_v<F, duration>) {
        field = duration(v.num);
    } else if constexpr (std::is_enum_v<F>) {
        field = static_cast<F>(v.num);
    } else if constexpr (std::is_integral_v<F>) {
        field = static_cast<F>(v.num);
    } else if constexpr (std::is_same_v<F, std::string>) {
        field = v.str;
    } else if constexpr (std::is_same_v<F, socket_address>) {
        field = v.address;
    } else if constexpr (std::is_same_v<F, std::vector<std::string>>) {
        field.clear();
        for (const auto& x : a) field.push_back(x.str);
    } else if constexpr (std::is_same_v<F, std::vector<cidr>>) {
        field.clear();
        for (const auto& x : a) field.push_back(x.network);
    } else if constexpr (is_optional<F>::value) {
        typename F::value_type inner{};
        assign(inner, a);
        field = std::move(inner);
    } else {
        static_assert(sizeof(F) == 0, "no conversion for this model field type");
    }
}

template <auto Member>
void set_member(void* target, args_view a) {
    using tr = member_traits<decltype(Member)>;
    assign(static_cast<typename tr::owner*>(target)->*Member, a);
}

template <auto Member>
constexpr apply_fn set() {
    return &set_member<Member>;
}

template <auto Member>
void* enter_member(void* parent, args_view) {
    using tr = member_traits<decltype(Member)>;
    auto& field = static_cast<typename tr::owner*>(parent)->*Member;
    if constexpr (is_optional<typename tr::type>::value) {
        field.emplace();
        return &*field;
    } else {
        return &field;
    }
}

// A block whose id'd children are appended to a vector member; the first argument is the id.
template <auto Member>
void* append_with_id(void* parent, args_view a) {
    using tr = member_traits<decltype(Member)>;
    auto& vec = static_cast<typename tr::owner*>(parent)->*Member;
    auto& item = vec.emplace_back();
    item.id = a[0].str;
    return &item;
}

inline void* same(void* parent, args_view) { return parent; }

template <auto Member>
void push_header(void* target, args_view a) {
    using tr = member_traits<decltype(Member)>;
    (static_cast<typename tr::owner*>(target)->*Member).push_back(sentinel::config::header_value{a[0].str, a[1].str});
}

// ---- node constructors -------------------------------------------------------------------

inline node_spec key(std::string_view name, value_spec v, apply_fn apply) {
    node_spec n;
    n.name = name;
    n.args.push_back(std::move(v));
    n.apply = apply;
    return n;
}

inline node_spec block(std::string_view name, enter_fn enter, std::vector<node_spec> children) {
    node_spec n;
    n.name = name;
    n.block = true;
    n.enter = enter;
    n.children = std::move(children);
    return n;
}

inline const kdl::node* child_named(const kdl::node& n, std::string_view name) {
    for (const auto& c : n.children)
        if (c.name == name) return &c;
    return nullptr;
}

// The TLS blocks (schema_tls.cpp): a listener's `tls` and an upstream's `tls`.
node_spec listener_tls_block();
node_spec upstream_tls_block();
// The agents block and the route keys that attach agents (schema_agents.cpp).
node_spec agents_block();
std::vector<node_spec> route_agent_keys();

}  // namespace sentinel::config::schema::builders
