// Fuzzes response_translator with arbitrary pipeline output. The first byte picks the request
// method or the tunnel flag (an extended CONNECT), the second seeds how the rest is cut; the
// rest is fed whole and again in pieces. Beyond "no crash", it checks:
//  * split invariance: the same heads (status, fields), the same body, the same completion
//    and the same finish() result whether the bytes come at once or in pieces;
//  * fields are lowercased, never hop-by-hop, and their views stay valid until the next feed;
//  * a 101 only comes out for a tunnel, as a 200; 1xx heads are informational;
//  * no body byte before the final head or when none is expected, never more than
//    Content-Length, and complete() means finish() succeeds.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/xoshiro.hpp"
#include "http/h2/translate.hpp"
#include "http/http1/message.hpp"

using namespace sentinel;

namespace {

#define FUZZ_CHECK(cond)           \
    do {                           \
        if (!(cond)) std::abort(); \
    } while (0)

using status = h2::response_translator::status;

struct head_event {
    status st;
    int code;
    std::vector<std::pair<std::string, std::string>> fields;
    bool operator==(const head_event&) const = default;
};

struct run_result {
    std::vector<head_event> heads;
    std::string body;
    bool error = false;
    bool complete = false;
    bool finished = false;
};

std::uint64_t content_length(const head_event& h) {
    for (const auto& [n, v] : h.fields)
        if (n == "content-length") {
            std::uint64_t x = 0;
            for (char c : v) {
                if (c < '0' || c > '9' || x > (~std::uint64_t{0} - 9) / 10) return ~std::uint64_t{0};
                x = x * 10 + static_cast<std::uint64_t>(c - '0');
            }
            return x;
        }
    return ~std::uint64_t{0};
}

// Feeds one piece the way server_session::write() does.
bool feed(h2::response_translator& t, std::string_view bytes, run_result& r, std::string_view method, bool tunnel) {
    for (;;) {
        const std::size_t body_before = r.body.size();
        const bool head_before = t.head_done();
        const auto st = t.feed(bytes, r.body);
        if (st == status::error) {
            r.error = true;
            return false;
        }
        if (!head_before) FUZZ_CHECK(r.body.size() == body_before);  // no body byte before the head
        if (st == status::informational || st == status::head) {
            head_event e{st, t.status_code(), {}};
            for (const auto& f : t.fields()) {
                FUZZ_CHECK(!f.name.empty());
                for (char c : f.name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
                FUZZ_CHECK(!http1::is_hop_by_hop(f.name));
                if (st == status::head && t.status_code() == 200 && tunnel) FUZZ_CHECK(f.name != "sec-websocket-accept");
                e.fields.emplace_back(std::string(f.name), std::string(f.value));
            }
            FUZZ_CHECK(e.code >= 100 && e.code <= 999 && e.code != 101);
            if (st == status::informational) {
                FUZZ_CHECK(e.code < 200);
                FUZZ_CHECK(!t.head_done());
            } else {
                FUZZ_CHECK(e.code >= 200);
                FUZZ_CHECK(t.head_done());
                if (!t.body_expected()) FUZZ_CHECK(t.complete());
                if (method == "HEAD" || e.code == 204 || e.code == 304) FUZZ_CHECK(!t.body_expected());
            }
            r.heads.push_back(std::move(e));
        }
        if (t.head_done() && !t.body_expected()) FUZZ_CHECK(r.body.empty());
        if (st == status::need_more && bytes.empty()) return true;
        FUZZ_CHECK(st != status::need_more);  // need_more always takes everything
    }
}

run_result run(std::string_view all, std::string_view method, bool tunnel, std::uint64_t seed, bool split) {
    h2::response_translator t;
    t.start(method, tunnel);
    run_result r;
    xoshiro256ss rng(seed);
    while (!all.empty()) {
        const std::size_t n = split ? std::min<std::size_t>(all.size(), 1 + rng.below(16)) : all.size();
        if (!feed(t, all.substr(0, n), r, method, tunnel)) break;
        all.remove_prefix(n);
    }
    r.complete = t.complete();
    if (!r.error) {
        r.finished = t.finish();
        if (r.complete) FUZZ_CHECK(r.finished);
        if (r.finished) FUZZ_CHECK(t.complete());
    }
    if (!r.heads.empty() && r.heads.back().st == status::head && !r.error) {
        const auto cl = content_length(r.heads.back());
        if (cl != ~std::uint64_t{0} && t.body_expected() && !tunnel) FUZZ_CHECK(r.body.size() <= cl);
    }
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    static constexpr std::string_view methods[] = {"GET", "HEAD", "POST", "CONNECT"};
    // A tunnel is an extended CONNECT: the session starts the translator with its :method.
    const bool tunnel = data[0] & 4;
    const std::string_view method = tunnel ? "CONNECT" : methods[data[0] & 3];
    const std::uint64_t seed = data[1];
    const std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);

    const auto whole = run(rest, method, tunnel, seed, false);
    const auto pieces = run(rest, method, tunnel, seed, true);
    FUZZ_CHECK(whole.error == pieces.error);
    FUZZ_CHECK(whole.heads == pieces.heads);
    FUZZ_CHECK(whole.body == pieces.body);
    FUZZ_CHECK(whole.complete == pieces.complete);
    FUZZ_CHECK(whole.finished == pieces.finished);
    return 0;
}
