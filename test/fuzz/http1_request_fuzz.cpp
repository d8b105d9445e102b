// Fuzzes parse_request with default and tiny limits. Besides "no crash", checks invariants
// that smuggling bugs would break: views stay inside the input, a head parsed from a prefix
// is the head parsed from the whole, and serialising a parsed head parses back identically.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/http1/parser.hpp"
#include "http/http1/serializer.hpp"

using namespace sentinel::http1;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

bool inside(std::string_view v, std::string_view data) {
    return v.empty() || (v.data() >= data.data() && v.data() + v.size() <= data.data() + data.size());
}

void run(std::string_view data, const limits& lim) {
    static request_head head;  // reused like a connection does, to exercise clear()
    const auto r = parse_request(data, lim, head);
    if (r.status == parse_status::error) {
        check(r.error != parse_error::none && r.error != parse_error::bad_response);
        return;
    }
    check(r.error == parse_error::none);
    if (r.status != parse_status::done) return;
    check(r.consumed <= data.size() && r.consumed >= 4);
    check(data.substr(r.consumed - 4, 4) == "\r\n\r\n");
    check(inside(head.method, data) && inside(head.target, data) && inside(head.query, data));
    check(head.path == "/" || inside(head.path, data));
    check(inside(head.host, data));
    check(head.headers.size() <= lim.max_headers);
    for (const auto& h : head.headers) check(inside(h.name, data) && inside(h.value, data));
    check(head.version_minor == 0 || head.version_minor == 1);
    check(head.framing != body_framing::until_close);
    check(head.framing != body_framing::content_length || head.content_length > 0);

    // The head is complete at `consumed`: fewer bytes must never be a complete head.
    request_head shorter;
    check(parse_request(data.substr(0, r.consumed - 1), lim, shorter).status == parse_status::need_more);

    // Round trip through the serializer (origin-form line, same fields).
    std::string wire;
    append_request_line(wire, head.method, head.target);
    for (const auto& h : head.headers) append_header(wire, h.name, h.value);
    append_head_end(wire);
    if (head.version_minor == 0) wire.replace(wire.find(" HTTP/1.1\r\n"), 11, " HTTP/1.0\r\n");
    limits roomy;
    roomy.max_request_line = wire.size();
    roomy.max_header_bytes = wire.size();
    request_head again;
    const auto r2 = parse_request(wire, roomy, again);
    check(r2.status == parse_status::done && r2.consumed == wire.size());
    check(again.method == head.method && again.target == head.target && again.path == head.path &&
          again.query == head.query && again.host == head.host &&
          again.framing == head.framing && again.content_length == head.content_length &&
          again.keep_alive == head.keep_alive && again.expect_continue == head.expect_continue &&
          again.has_upgrade == head.has_upgrade && again.headers.size() == head.headers.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view data(reinterpret_cast<const char*>(bytes), size);
    run(data, limits{});
    limits tiny;
    tiny.max_request_line = 32;
    tiny.max_header_bytes = 96;
    tiny.max_headers = 4;
    run(data, tiny);
    return 0;
}
