// Helpers for handler::configure(): the shape checks every agent's `config {}` block needs. The
// proxy does not check the block (PROTOCOL.md §3), so an agent that skipped these would accept
// misspelled keys silently; the messages end up next to the file:line:col of each node.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agents/sdk/cpp/handler.hpp"

namespace sentinel::agent_sdk {

// `unknown key "foo"; expected a, b or c`
std::string unknown_key_message(std::string_view name, std::initializer_list<std::string_view> keys);

// Calls `on_key` for each child of `block` whose name is one of `keys`, in order. Reports every
// other child (unknown key), a key given twice, and arguments, properties or a type annotation
// on the block node itself.
void for_each_key(const v1::ConfigNode& block, std::initializer_list<std::string_view> keys,
                  std::vector<config_error>& errors,
                  const std::function<void(const v1::ConfigNode&)>& on_key);

// For a node written `key <value>`: exactly one argument of that type, without a type annotation,
// no properties and no children. Otherwise an error on the node and nullopt.
std::optional<std::string> string_value(const v1::ConfigNode& node, std::vector<config_error>& errors);
std::optional<std::int64_t> integer_value(const v1::ConfigNode& node, std::vector<config_error>& errors);
std::optional<bool> bool_value(const v1::ConfigNode& node, std::vector<config_error>& errors);

}  // namespace sentinel::agent_sdk
