#include "agents/sdk/cpp/config.hpp"

#include <algorithm>

namespace sentinel::agent_sdk {

namespace {

std::string_view kind_name(const v1::ConfigValue& v) {
    switch (v.kind_case()) {
    case v1::ConfigValue::kString: return "a string";
    case v1::ConfigValue::kInteger: return "an integer";
    case v1::ConfigValue::kNumber: return "a number";
    case v1::ConfigValue::kBoolean: return "a boolean";
    case v1::ConfigValue::kNull: return "#null";
    case v1::ConfigValue::KIND_NOT_SET: break;
    }
    return "no value";
}

// The value of a `key <value>` node if its shape is right; `want` names the expected type.
const v1::ConfigValue* single_value(const v1::ConfigNode& node, v1::ConfigValue::KindCase kind,
                                    std::string_view want, std::vector<config_error>& errors) {
    auto fail = [&](std::string message) {
        errors.push_back({node.path(), std::move(message)});
        return nullptr;
    };
    const std::string& name = node.name();
    if (node.children_size() != 0) return fail(name + " takes no child nodes");
    if (!node.props().empty()) return fail(name + " takes no properties (got " + node.props().begin()->first + "=)");
    if (node.args_size() != 1)
        return fail(name + " takes exactly one argument, " + std::string(want) + "; got " +
                    std::to_string(node.args_size()));
    const auto& v = node.args(0);
    if (!v.type_annotation().empty())
        return fail(name + ": unexpected type annotation (" + v.type_annotation() + ")");
    if (v.kind_case() != kind)
        return fail(name + " expects " + std::string(want) + ", got " + std::string(kind_name(v)));
    return &v;
}

}  // namespace

std::string unknown_key_message(std::string_view name, std::initializer_list<std::string_view> keys) {
    std::string m = "unknown key \"" + std::string(name) + "\"; ";
    if (keys.size() == 0) return m + "this agent takes no configuration";
    m += "expected ";
    std::size_t i = 0;
    for (auto k : keys) {
        if (i > 0) m += i + 1 == keys.size() ? " or " : ", ";
        m += k;
        ++i;
    }
    return m;
}

void for_each_key(const v1::ConfigNode& block, std::initializer_list<std::string_view> keys,
                  std::vector<config_error>& errors,
                  const std::function<void(const v1::ConfigNode&)>& on_key) {
    if (block.args_size() != 0 || !block.props().empty())
        errors.push_back({block.path(), "the config block takes no arguments or properties, only child nodes"});
    std::vector<std::string_view> seen;
    for (const auto& child : block.children()) {
        const std::string_view name = child.name();
        if (std::find(keys.begin(), keys.end(), name) == keys.end()) {
            errors.push_back({child.path(), unknown_key_message(name, keys)});
            continue;
        }
        // One canonical form per setting: a repeated key would leave "which one wins" to chance.
        if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
            errors.push_back({child.path(), std::string(name) + " is given more than once"});
            continue;
        }
        seen.push_back(name);
        on_key(child);
    }
}

std::optional<std::string> string_value(const v1::ConfigNode& node, std::vector<config_error>& errors) {
    const auto* v = single_value(node, v1::ConfigValue::kString, "a string", errors);
    if (!v) return std::nullopt;
    return v->string();
}

std::optional<std::int64_t> integer_value(const v1::ConfigNode& node, std::vector<config_error>& errors) {
    const auto* v = single_value(node, v1::ConfigValue::kInteger, "an integer", errors);
    if (!v) return std::nullopt;
    return v->integer();
}

std::optional<bool> bool_value(const v1::ConfigNode& node, std::vector<config_error>& errors) {
    const auto* v = single_value(node, v1::ConfigValue::kBoolean, "#true or #false", errors);
    if (!v) return std::nullopt;
    return v->boolean();
}

}  // namespace sentinel::agent_sdk
