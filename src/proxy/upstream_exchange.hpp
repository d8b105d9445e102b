// The upstream_request and response phases for one stream: pick an endpoint, get a pooled or
// new connection, send the request head and stream the body, read the response head, stream
// the response body back, and return the connection to the pool when it is reusable.
#pragma once

#include <memory>

#include "proxy/http1_connection.hpp"
#include "upstream/connection_pool.hpp"

namespace sentinel::proxy {

class upstream_exchange {
public:
    upstream_exchange(http1_connection& down, const config::route_config& route,
                      const upstream::upstream_group& group, std::size_t group_index);
    awaitable<void> run();

private:
    enum class outcome { ok, stale, failed };

    awaitable<bool> connect(const upstream::endpoint& endpoint);
    awaitable<bool> write_upstream(std::string_view first, std::string_view second = {});
    awaitable<outcome> send_request();
    awaitable<bool> send_content_length_body(std::uint64_t remaining);
    awaitable<bool> send_chunked_body();
    awaitable<outcome> read_response_head();
    awaitable<bool> relay_response_body();
    awaitable<void> tunnel();
    awaitable<void> pump_to_upstream();
    awaitable<void> pump_to_downstream();
    awaitable<std::size_t> read_upstream(boost::system::error_code& ec);
    awaitable<bool> write_downstream(std::string_view first, std::string_view second = {});
    // Failure replies: each drops the upstream connection first.
    awaitable<void> fail(int status, observability::local_reply_reason reason);
    awaitable<void> upstream_failed();     // 504 if the deadline fired, else 502
    awaitable<void> client_body_failed();  // 408 if the client stalled, else just close

    http1_connection& down_;
    const config::route_config& route_;
    const upstream::upstream_group& group_;
    std::size_t group_index_;
    const snapshot& snap_;
    std::unique_ptr<upstream::pooled_connection> up_;
    http1::response_head response_;
    std::size_t response_head_size_ = 0;
    bool body_started_ = false;      // a request body byte was sent: no retry possible
    bool request_complete_ = false;  // the whole request (head + body) was sent
    bool upgrade_ = false;           // Upgrade relayed to the upstream
};

}  // namespace sentinel::proxy
