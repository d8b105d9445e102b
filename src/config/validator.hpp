// Schema and semantic check of a merged KDL document (internal to sentinel_config).
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "config/kdl/document.hpp"
#include "config/loader.hpp"
#include "config/schema/schema.hpp"

namespace sentinel::config {

// One file that took part in a load: the main file or an include.
struct source_file {
    std::string name;  // as shown in diagnostics
    std::string dir;   // directory relative paths in this file resolve against
    std::string text;
    kdl::document doc;
};

// A top-level node together with the file it came from (after include expansion).
struct top_node {
    const kdl::node* node = nullptr;
    std::size_t file = 0;
};

struct location {
    std::size_t file = 0;
    kdl::position pos;
};

// The source line `line` (1-based) of `text`, without its terminator.
std::string source_line(std::string_view text, std::uint32_t line);

}  // namespace sentinel::config

namespace sentinel::config::schema {

struct check_context {
    const std::deque<sentinel::config::source_file>* files = nullptr;
    std::size_t file = 0;  // the file of the node being checked
    std::vector<diagnostic> errors;

    void error(std::size_t in_file, const kdl::position& pos, std::string message);
    void error(const kdl::position& pos, std::string message) { error(file, pos, std::move(message)); }
    std::string where(const location& loc) const;  // "file:line:col"

    // Semantic facts collected during the walk, checked afterwards.
    struct reference {
        std::string kind, id;
        location loc;
    };
    struct listen_site {
        std::string what;  // `listener "public"` or `admin`
        socket_address address;
        location loc;
    };
    // A route that upgrades connections (`websocket`, `allow-upgrade`): an HTTP/1.1 mechanism,
    // so its upstream must not speak h2 (RFC 8441 towards upstreams is not built).
    struct upgrade_route {
        std::string route, upstream, key;  // key: the setting that asks for upgrades
        location loc;
    };
    std::map<std::string, std::map<std::string, location>> ids;  // kind → id → where defined
    std::vector<reference> references;
    std::vector<listen_site> listens;
    std::vector<upgrade_route> upgrade_routes;
};

// Walks `nodes` against the schema, filling `out` and collecting every error in `ctx`.
void check(check_context& ctx, const std::vector<sentinel::config::top_node>& nodes, config& out);

}  // namespace sentinel::config::schema
