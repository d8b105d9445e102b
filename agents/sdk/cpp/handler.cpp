#include "agents/sdk/cpp/handler.hpp"

#include "agents/sdk/cpp/config.hpp"
#include "agents/sdk/cpp/decision.hpp"

namespace sentinel::agent_sdk {

std::vector<config_error> handler::configure(const v1::ConfigNode& config) {
    std::vector<config_error> errors;
    for_each_key(config, {}, errors, [](const v1::ConfigNode&) {});
    return errors;
}

v1::Capabilities handler::capabilities() const {
    v1::Capabilities c;
    c.add_events(v1::REQUEST_HEADERS);
    return c;
}

v1::Decision handler::on_request_headers(stream_context&, const v1::RequestHeaders&) { return allow(); }
v1::Decision handler::on_request_body(stream_context&, const v1::BodyChunk&) { return allow(); }
v1::Decision handler::on_response_headers(stream_context&, const v1::ResponseHeaders&) { return allow(); }
v1::Decision handler::on_response_body(stream_context&, const v1::BodyChunk&) { return allow(); }
v1::Decision handler::on_websocket_frame(stream_context&, const v1::WebSocketFrame&) { return allow(); }
void handler::on_request_complete(stream_context&, const v1::RequestComplete&) {}

}  // namespace sentinel::agent_sdk
