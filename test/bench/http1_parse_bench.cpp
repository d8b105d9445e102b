// Micro-benchmark of the HTTP/1 hot path: one browser-like request head, parsed into a reused
// request_head (so the steady state allocates nothing), plus the chunked decoder.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "http/http1/chunked.hpp"
#include "http/http1/parser.hpp"

namespace {

using namespace sentinel::http1;

// What Chrome sends for a page load (719 bytes, 15 fields).
const std::string browser_request =
    "GET /products/list?category=shoes&sort=price_asc&page=2 HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "Connection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"118\", \"Google Chrome\";v=\"118\", \"Not=A?Brand\";v=\"99\"\r\n"
    "sec-ch-ua-mobile: ?0\r\n"
    "sec-ch-ua-platform: \"Linux\"\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/118.0.0.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "*/*;q=0.8\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Referer: https://shop.example.com/products\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Cookie: session=7f3a9c2e1b; theme=dark\r\n"
    "\r\n";

void bm_parse_browser_request(benchmark::State& state) {
    request_head head;
    const limits lim;
    // Premise first (ANCHORS §9): time only a parse that succeeds.
    if (parse_request(browser_request, lim, head).status != parse_status::done) std::abort();
    for (auto _ : state) {
        auto r = parse_request(browser_request, lim, head);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(head.headers.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * browser_request.size()));
}
BENCHMARK(bm_parse_browser_request);

void bm_parse_minimal_request(benchmark::State& state) {
    const std::string in = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    request_head head;
    const limits lim;
    if (parse_request(in, lim, head).status != parse_status::done) std::abort();
    for (auto _ : state) {
        auto r = parse_request(in, lim, head);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(bm_parse_minimal_request);

void bm_chunked_decode(benchmark::State& state) {
    std::string wire;
    for (int i = 0; i < 16; ++i) {
        append_chunk_header(wire, 4096);
        wire.append(4096, 'x');
        append_chunk_end(wire);
    }
    append_last_chunk(wire);
    for (auto _ : state) {
        chunked_decoder dec;
        std::string_view in = wire;
        std::size_t total = 0;
        for (;;) {
            std::size_t consumed = 0;
            std::string_view out;
            const auto s = dec.decode(in, consumed, out);
            in.remove_prefix(consumed);
            total += out.size();
            if (s == chunked_decoder::status::done || s == chunked_decoder::status::error) break;
        }
        if (total != 16 * 4096) std::abort();
        benchmark::DoNotOptimize(total);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(bm_chunked_decode);

}  // namespace

BENCHMARK_MAIN();
