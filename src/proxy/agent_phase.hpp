// The agents phase of the request pipeline (agents/protocol/PROTOCOL.md §4-7): the route's
// agents see the request headers (and, when they ask, the body) before anything goes
// upstream, and the response headers before anything reaches the client. Their decisions
// block, redirect, or change headers and body; an agent that cannot answer gets its
// failure mode.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/channel.hpp"
#include "agent/decision.hpp"
#include "http/http1/chunked.hpp"
#include "http/http1/message.hpp"

namespace sentinel::proxy {

class http1_connection;

// The agents of the request being served, kept on its connection until it is logged.
struct request_agents {
    struct entry {
        std::uint32_t index = 0;           // cfg->agents index
        std::shared_ptr<agent::channel> ch;  // null: the agent is gone (reload)
        agent::stream stream;
        bool acquired = false;             // holds one of the agent's max-concurrent slots
        bool trial = false;                // the breaker's half-open trial
        bool skipped = false;              // failed open: no further event goes to it
        bool wants_body = false;           // answered need_more_body to the request headers
        bool inspecting = false;           // stream mode: body chunks still go to it
        std::uint64_t limit = 0;           // body inspection limit
    };
    std::vector<entry> entries;
    agent::header_edits request_edits;   // applied to the upstream request
    agent::header_edits response_edits;  // applied to the response (also local replies)
    std::vector<std::pair<std::string, std::string>> metadata;  // for later agents, in order
    // A request body read for inspection: decoded, with the agents' replacements applied.
    std::string body;
    bool body_held = false;      // `body` is what goes upstream (instead of the client's bytes)
    bool body_complete = false;  // all of it: else the client's remaining body follows
    http1::chunked_decoder decoder;  // chunked: where the client's body continues
    std::string head_copy;       // the request head, once detached from the read buffer
    std::string blocked_by;      // id of the agent whose decision answered the request
    // WebSocket frames of both directions take turns at the agents (one event per stream).
    struct frame_waiter {
        boost::asio::steady_timer* timer;
        bool granted = false;  // the turn was handed over (else the wait was cancelled)
    };
    bool frame_busy = false;
    std::vector<frame_waiter*> frame_waiters;

    bool active() const { return !entries.empty(); }
};

// Request headers and body. False when the phase answered the request (block, redirect,
// failure mode closed, 413) or the client left.
agent::awaitable<bool> run_request_agents(http1_connection& conn, const config::route_config& route);

// Response headers. False when an agent's decision replaced the response (the caller must
// not relay it); the reply was sent.
agent::awaitable<bool> run_response_agents(http1_connection& conn, const config::route_config& route,
                                    const http1::response_head& response);

// Response body inspection, driven by the exchange after run_response_agents: whether an
// agent asked for the body; the largest limit to read it up to (nothing: the declared length
// was refused and the reply sent); each new piece of the decoded body as it is read; its end
// (`done`: all of it, else the limit was reached). False: a decision replaced the response.
bool response_body_wanted(http1_connection& conn);
agent::awaitable<std::optional<std::uint64_t>> response_body_limit(http1_connection& conn,
                                                                   const config::route_config& route,
                                                                   std::optional<std::uint64_t> declared);
agent::awaitable<bool> response_body_piece(http1_connection& conn, const config::route_config& route,
                                           std::string& body, std::size_t piece_start, bool done);
agent::awaitable<bool> response_body_end(http1_connection& conn, const config::route_config& route,
                                         std::string& body, bool done);

// WebSocket frames after an upgrade, for agents that asked for WEBSOCKET_FRAME: whether any
// did, the largest payload they inspect (the smallest of their limits), whether a larger frame
// may pass uninspected (every such agent has body-over-limit "skip"), and the verdict on one
// data frame (its unmasked payload, replaced in place when an agent rewrote it).
struct frame_verdict {
    bool forward = true;
    bool replaced = false;
    std::uint16_t close_code = 0;  // !forward: end the connection with this close code (0: it is ending)
};
bool websocket_inspected(http1_connection& conn);
std::uint64_t websocket_frame_limit(http1_connection& conn);
bool websocket_oversize_passes(http1_connection& conn);
agent::awaitable<frame_verdict> websocket_frame_event(http1_connection& conn, bool client_to_server,
                                                      std::uint8_t opcode, bool fin, std::string& payload);

// The log phase: REQUEST_COMPLETE to the agents that asked for it, then every stream ends and
// every concurrency slot is returned.
void finish_agents(http1_connection& conn);

}  // namespace sentinel::proxy
