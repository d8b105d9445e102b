// Fuzzes parse_response as the answer to GET, HEAD and CONNECT: no crash, views inside the
// input, only bad_response as an error, and framing consistent with the request method.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/http1/parser.hpp"

using namespace sentinel::http1;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

bool inside(std::string_view v, std::string_view data) {
    return v.empty() || (v.data() >= data.data() && v.data() + v.size() <= data.data() + data.size());
}

void run(std::string_view data, std::string_view method, const limits& lim) {
    static response_head head;
    const auto r = parse_response(data, lim, method, head);
    if (r.status == parse_status::error) {
        check(r.error == parse_error::bad_response);
        return;
    }
    if (r.status != parse_status::done) return;
    check(r.consumed <= data.size() && data.substr(r.consumed - 4, 4) == "\r\n\r\n");
    check(head.status >= 100 && head.status <= 999);
    check(inside(head.reason, data));
    for (const auto& h : head.headers) check(inside(h.name, data) && inside(h.value, data));
    if (method == "HEAD" || head.status < 200 || head.status == 204 || head.status == 304)
        check(head.framing == body_framing::none);
    if (head.framing == body_framing::until_close) check(!head.keep_alive);
    response_head shorter;
    check(parse_response(data.substr(0, r.consumed - 1), lim, method, shorter).status ==
          parse_status::need_more);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view data(reinterpret_cast<const char*>(bytes), size);
    limits tiny;
    tiny.max_request_line = 32;
    tiny.max_header_bytes = 128;
    tiny.max_headers = 4;
    run(data, "GET", limits{});
    run(data, "HEAD", limits{});
    run(data, "CONNECT", tiny);
    return 0;
}
