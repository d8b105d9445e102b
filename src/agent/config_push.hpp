// Handing an agent its `config {}` block (PROTOCOL.md §3): the KDL subtree as a ConfigNode
// tree whose paths map back to file:line:col, the HELLO every connection starts with, and
// the blocking validate-only handshake run at start-up and on reload.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/model/config.hpp"
#include "sentinel_agent_v1.pb.h"

namespace sentinel::agent {

struct config_tree {
    v1::ConfigNode root;  // name "config"; empty when the agent has no block
    std::unordered_map<std::string, kdl::position> positions;  // ConfigNode.path → where written
};
config_tree make_config_tree(const config::agent_config& agent);

// The HELLO of every connection to `agent` (validate_only false).
v1::Hello make_hello(const config::agent_config& agent, const config_tree& tree, std::uint32_t worker);

// "file:line:col: agent \"id\" rejected its config: message" for each error (the block's own
// position when a path is unknown).
std::vector<std::string> describe_config_errors(const config::agent_config& agent, const config_tree& tree,
                                                const google::protobuf::RepeatedPtrField<v1::ConfigError>& errors);

struct validation {
    bool reached = false;             // the agent answered the handshake
    std::string failure;              // !reached: why (connect refused, timeout, bad answer)
    std::vector<std::string> errors;  // reached: the config errors, positioned; empty = accepted
};
// Connects to the agent, sends HELLO with validate_only, waits for HELLO_ACK. Blocking, bounded
// by `timeout`; for the main thread at start-up and reload, never for workers.
validation validate_config(const config::agent_config& agent, std::chrono::milliseconds timeout);

// Where to connect for `socket` ("/path" or "tcp://host:port"): a TCP host name is resolved
// here (blocking getaddrinfo: for the main thread, when a snapshot is built), so workers only
// ever connect to an address. A name that does not resolve is returned as is (the workers'
// connects then fail and are counted) and `error` says why.
std::string resolve_target(const std::string& socket, std::string& error);

// Opens a blocking, connected socket to `agent.socket` ("/path" or "tcp://host:port") within
// `timeout`; -1 and `error` set on failure.
int connect_blocking(const std::string& socket, std::chrono::milliseconds timeout, std::string& error);

}  // namespace sentinel::agent
