// Route lookup at scale: ~10,000 routes shaped like a large multi-tenant edge (500 hosts, 50 of
// them wildcards, 20 path prefixes each; 20 host-less regex routes; 100 host-less routes
// selected by a header; a few host-less fallbacks) and requests that hit each kind, plus
// misses. Each benchmark cycles through 1,024 pre-built requests so branch predictors and
// caches see a realistic spread rather than one repeated key.
//
//   build-router/bench/micro/route_match_bench --benchmark_repetitions=5 ...
// see docs/architecture/routing.md for the command and the figures.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "router/route_table.hpp"

namespace {

using namespace sentinel;
using router::request_view;

constexpr int host_count = 500;
constexpr int prefixes_per_host = 20;
constexpr int regex_routes = 20;
constexpr int header_routes = 100;

std::string host_name(int h) { return h % 10 == 0 ? "*.w" + std::to_string(h) + ".example.net" : "h" + std::to_string(h) + ".example.com"; }

std::vector<config::route_config> make_routes() {
    std::vector<config::route_config> routes;
    auto add = [&](std::string id, config::route_match m) {
        config::route_config r;
        r.id = std::move(id);
        r.match = std::move(m);
        r.upstream = "u";
        routes.push_back(std::move(r));
    };
    for (int h = 0; h < host_count; ++h)
        for (int p = 0; p < prefixes_per_host; ++p) {
            config::route_match m;
            m.hosts = {host_name(h)};
            // Mix of shapes a tenant writes: versioned APIs and static trees.
            m.path_prefixes = {p % 4 == 0 ? "/static/t" + std::to_string(p) + "/" : "/api/v" + std::to_string(p) + "/"};
            if (p == 7) m.methods = {"GET", "HEAD"};
            add("h" + std::to_string(h) + "-p" + std::to_string(p), std::move(m));
        }
    for (int i = 0; i < regex_routes; ++i) {
        config::route_match m;
        m.path_regexes = {"/r" + std::to_string(i) + "/users/[0-9]+/(profile|avatar)"};
        add("regex-" + std::to_string(i), std::move(m));
    }
    for (int i = 0; i < header_routes; ++i) {
        config::route_match m;
        m.path_prefixes = {"/tenant/"};
        m.headers = {{"x-tenant", config::value_match_kind::exact, {"t" + std::to_string(i)}}};
        add("tenant-" + std::to_string(i), std::move(m));
    }
    add("health", {.paths = {"/healthz"}});
    add("assets", {.path_prefixes = {"/assets/"}});
    add("canary", {.path_prefixes = {"/api/"}, .headers = {{"x-canary", config::value_match_kind::present, {}}}});
    return routes;
}

const std::vector<config::route_config>& routes() {
    static const auto r = make_routes();
    return r;
}

const router::route_table& table() {
    static const router::route_table t(routes());
    return t;
}

// A request plus the storage its views point into.
struct owned_request {
    std::string method, host, path, query;
    std::vector<http1::header> headers;
    std::vector<std::string> header_storage;
    request_view view() const { return {method, host, path, headers, query}; }
};

enum class kind { exact_host, wildcard_host, hostless, regex, header, miss, mix };

owned_request make_request(kind k, std::mt19937& rng) {
    auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
    owned_request r;
    r.method = "GET";
    r.header_storage = {"curl/8.0", "*/*"};
    r.headers = {{"User-Agent", r.header_storage[0]}, {"Accept", r.header_storage[1]}};
    const int p = 1 + 4 * pick(4) + pick(3);  // an /api/vN/ prefix
    switch (k) {
    case kind::exact_host: {
        int h = pick(host_count);
        if (h % 10 == 0) ++h;
        r.host = "h" + std::to_string(h) + ".example.com:443";
        r.path = "/api/v" + std::to_string(p) + "/orders/" + std::to_string(pick(100000));
        r.query = "page=2&limit=50";
        break;
    }
    case kind::wildcard_host:
        r.host = "tenant" + std::to_string(pick(1000)) + ".w" + std::to_string(10 * pick(host_count / 10)) + ".example.net";
        r.path = "/static/t" + std::to_string(4 * pick(5)) + "/app.js";
        break;
    case kind::hostless:
        r.host = "unknown" + std::to_string(pick(100)) + ".example.org";
        r.path = pick(2) ? "/healthz" : "/assets/img/logo.png";
        break;
    case kind::regex:
        r.host = "h" + std::to_string(1 + 10 * pick(host_count / 10)) + ".example.com";
        r.path = "/r" + std::to_string(pick(regex_routes)) + "/users/" + std::to_string(pick(100000)) + "/avatar";
        break;
    case kind::header:
        r.host = "h3.example.com";
        r.path = "/tenant/x";
        r.header_storage.push_back("t" + std::to_string(pick(header_routes)));
        r.headers.push_back({"X-Tenant", r.header_storage.back()});
        break;
    case kind::miss:
        r.host = pick(2) ? "h5.example.com" : "nobody.example.org";
        r.path = "/nothing/here";
        r.query = "x=1";
        break;
    case kind::mix: return make_request(static_cast<kind>(pick(6)), rng);
    }
    return r;
}

std::vector<owned_request> make_requests(kind k) {
    std::mt19937 rng(static_cast<unsigned>(k) + 1);
    std::vector<owned_request> out;
    for (int i = 0; i < 1024; ++i) out.push_back(make_request(k, rng));
    // header_storage moved with the request; re-point the header views at it.
    for (auto& r : out)
        for (std::size_t i = 0; i < r.headers.size(); ++i) r.headers[i].value = r.header_storage[i];
    return out;
}

template <bool linear>
void match(benchmark::State& state, kind k, bool expect_hit) {
    const auto& t = table();
    const auto requests = make_requests(k);
    std::vector<request_view> views;
    for (const auto& r : requests) views.push_back(r.view());
    // A benchmark that measures the wrong outcome is worse than none. (Only a sample is
    // compared with the linear scan, which costs ~0.3 ms a request here.)
    for (std::size_t n = 0; n < views.size(); ++n) {
        const auto& v = views[n];
        if (n >= 64 && !linear) {
            if (k != kind::mix && (t.match(v) != nullptr) != expect_hit) std::abort();
            continue;
        }
        const auto* got = t.match(v);
        if (got != t.match_linear(v) || (k != kind::mix && (got != nullptr) != expect_hit)) {
            std::fprintf(stderr, "unexpected result for %.*s%.*s\n", int(v.host.size()), v.host.data(),
                         int(v.path.size()), v.path.data());
            std::abort();
        }
    }
    std::size_t i = 0;
    for (auto _ : state) {
        const auto* route = linear ? t.match_linear(views[i]) : t.match(views[i]);
        benchmark::DoNotOptimize(route);
        i = (i + 1) & 1023;
    }
    state.counters["routes"] = static_cast<double>(t.ordered().size());
}

void BM_exact_host(benchmark::State& s) { match<false>(s, kind::exact_host, true); }
void BM_wildcard_host(benchmark::State& s) { match<false>(s, kind::wildcard_host, true); }
void BM_hostless_fallback(benchmark::State& s) { match<false>(s, kind::hostless, true); }
void BM_regex(benchmark::State& s) { match<false>(s, kind::regex, true); }
void BM_header(benchmark::State& s) { match<false>(s, kind::header, true); }
void BM_miss(benchmark::State& s) { match<false>(s, kind::miss, false); }
void BM_mix(benchmark::State& s) { match<false>(s, kind::mix, true); }
void BM_mix_linear_scan(benchmark::State& s) { match<true>(s, kind::mix, true); }

void BM_build_table(benchmark::State& state) {
    for (auto _ : state) {
        router::route_table t(routes());
        benchmark::DoNotOptimize(t);
    }
}

// Five repetitions, medians reported: single runs on a shared 2-core machine are noise.
#define SENTINEL_MATCH_BENCHMARK(fn) BENCHMARK(fn)->Repetitions(5)->ReportAggregatesOnly(true)
SENTINEL_MATCH_BENCHMARK(BM_exact_host);
SENTINEL_MATCH_BENCHMARK(BM_wildcard_host);
SENTINEL_MATCH_BENCHMARK(BM_hostless_fallback);
SENTINEL_MATCH_BENCHMARK(BM_regex);
SENTINEL_MATCH_BENCHMARK(BM_header);
SENTINEL_MATCH_BENCHMARK(BM_miss);
SENTINEL_MATCH_BENCHMARK(BM_mix);
SENTINEL_MATCH_BENCHMARK(BM_mix_linear_scan);
BENCHMARK(BM_build_table)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
