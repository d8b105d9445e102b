// Checking and applying agent decisions (PROTOCOL.md §6). No I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sentinel_agent_v1.pb.h"

namespace sentinel::agent {

// Header changes of one side (request or response), merged from every agent in order:
// received fields named in `drop` are left out and `add` is appended, so the result of
// SET/ADD/REMOVE sequences is what applying them one by one would give.
struct header_edits {
    std::vector<std::string> drop;
    std::vector<std::pair<std::string, std::string>> add;

    bool empty() const { return drop.empty() && add.empty(); }
    void apply(const v1::HeaderMutation& m);
    bool drops(std::string_view name) const;
    void clear() {
        drop.clear();
        add.clear();
    }
};

// Where a decision answers: it decides what a decision may contain.
enum class decision_point { request_headers, request_body, response_headers, response_body, websocket_frame };

// Why `d` is not acceptable at `at`, or nothing when it is. `more_body`: a need_more_body
// answer is allowed (the agent's body mode for this direction is not NONE and more body exists).
std::optional<std::string> check_decision(const v1::Decision& d, decision_point at, bool more_body);

// Status and Location of a block/redirect decision, defaults applied.
int block_status(const v1::Block& b);
int redirect_status(const v1::Redirect& r);

}  // namespace sentinel::agent
