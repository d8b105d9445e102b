// Shorthands for building decisions (PROTOCOL.md §6). Plain protobuf underneath: anything not
// covered here is set on the v1::Decision directly.
#pragma once

#include <cstdint>
#include <string_view>

#include "sentinel_agent_v1.pb.h"

namespace sentinel::agent_sdk {

namespace v1 = sentinel::agent::v1;

inline v1::Decision allow() {
    v1::Decision d;
    d.set_allow(true);
    return d;
}

// `status` 400-599; the proxy adds the framing of `body`.
inline v1::Decision block(std::uint32_t status = 403, std::string_view body = {}) {
    v1::Decision d;
    auto* b = d.mutable_block();
    b->set_status(status);
    b->set_body(body.data(), body.size());
    return d;
}

inline v1::Decision redirect(std::string_view location, std::uint32_t status = 302) {
    v1::Decision d;
    auto* r = d.mutable_redirect();
    r->set_status(status);
    r->set_location(location.data(), location.size());
    return d;
}

inline v1::Decision need_more_body() {
    v1::Decision d;
    d.set_need_more_body(true);
    return d;
}

inline void add_mutation(google::protobuf::RepeatedPtrField<v1::HeaderMutation>& to, v1::HeaderMutation::Op op,
                         std::string_view name, std::string_view value) {
    auto* m = to.Add();
    m->set_op(op);
    m->set_name(name.data(), name.size());
    m->set_value(value.data(), value.size());
}

// SET replaces every field of that name, so a client cannot smuggle its own copy past the agent.
inline void set_request_header(v1::Decision& d, std::string_view name, std::string_view value) {
    add_mutation(*d.mutable_request_headers(), v1::HeaderMutation::SET, name, value);
}
inline void set_response_header(v1::Decision& d, std::string_view name, std::string_view value) {
    add_mutation(*d.mutable_response_headers(), v1::HeaderMutation::SET, name, value);
}
inline void remove_request_header(v1::Decision& d, std::string_view name) {
    add_mutation(*d.mutable_request_headers(), v1::HeaderMutation::REMOVE, name, {});
}

}  // namespace sentinel::agent_sdk
