// The Prometheus exposition, checked without a Prometheus parser: every family announced
// once with HELP and TYPE before its samples, names in Sentinel's convention, counters
// ending in _total, histogram series complete, and labelled families present at zero.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "observability/metrics.hpp"

namespace sentinel::observability {
namespace {

struct family_info {
    bool help = false;
    std::string type;
    int samples = 0;
};

// The family a sample belongs to: histograms expose name_bucket/_sum/_count.
std::string family_of(const std::string& sample, const std::map<std::string, family_info>& families) {
    if (families.count(sample)) return sample;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s(suffix);
        if (sample.size() > s.size() && sample.compare(sample.size() - s.size(), s.size(), s) == 0) {
            const std::string base = sample.substr(0, sample.size() - s.size());
            auto it = families.find(base);
            if (it != families.end() && it->second.type == "histogram") return base;
        }
    }
    return {};
}

std::map<std::string, family_info> check(const std::string& text) {
    static const std::regex name_re("^sentinel_[a-z0-9_]+$");
    std::map<std::string, family_info> families;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        EXPECT_FALSE(line.empty()) << "blank line in the exposition";
        if (line.rfind("# HELP ", 0) == 0) {
            const std::string name = line.substr(7, line.find(' ', 7) - 7);
            EXPECT_TRUE(std::regex_match(name, name_re)) << name;
            EXPECT_FALSE(families[name].help) << "duplicate HELP for " << name;
            EXPECT_GT(line.size(), 8 + name.size()) << "empty HELP text for " << name;
            families[name].help = true;
        } else if (line.rfind("# TYPE ", 0) == 0) {
            std::istringstream fields(line.substr(7));
            std::string name, type;
            fields >> name >> type;
            EXPECT_TRUE(families[name].help) << "TYPE before HELP (or no HELP) for " << name;
            EXPECT_TRUE(families[name].type.empty()) << "duplicate TYPE for " << name;
            EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << name << " " << type;
            families[name].type = type;
        } else {
            EXPECT_NE(line[0], '#') << line;
            if (line[0] == '#') continue;
            const auto end = line.find_first_of("{ ");
            const std::string sample = line.substr(0, end);
            const std::string family = family_of(sample, families);
            EXPECT_FALSE(family.empty()) << "sample without a family announced before it: " << line;
            if (family.empty()) continue;
            ++families[family].samples;
            // name[{labels}] value — exactly two fields after the labels: no timestamps.
            const auto close = line.rfind('}');
            const std::string rest = line.substr(close == std::string::npos ? end : close + 1);
            std::istringstream fields(rest);
            std::string value, extra;
            fields >> value;
            EXPECT_FALSE(value.empty()) << line;
            EXPECT_FALSE(fields >> extra) << "sample carries a timestamp: " << line;
        }
    }
    for (const auto& [name, f] : families) {
        EXPECT_TRUE(f.help && !f.type.empty()) << name;
        if (f.type == "counter") EXPECT_TRUE(name.ends_with("_total")) << name;
        else EXPECT_FALSE(name.ends_with("_total")) << name << " is a " << f.type;
    }
    return families;
}

TEST(Exposition, EveryFamilyAnnouncedEvenWithNoWorkersOrSlots) {
    process_metrics process;
    const auto families = check(render_prometheus({}, process));
    for (const char* name : {"sentinel_http_requests_total", "sentinel_http_request_duration_seconds",
                             "sentinel_upstream_request_duration_seconds", "sentinel_upstream_connect_duration_seconds",
                             "sentinel_upstream_response_header_duration_seconds",
                             "sentinel_downstream_connections_active", "sentinel_http_request_bytes_total",
                             "sentinel_http_response_bytes_total", "sentinel_upstream_responses_total",
                             "sentinel_upstream_try_failures_total", "sentinel_config_reloads_total",
                             "sentinel_build_info"})
        EXPECT_TRUE(families.count(name)) << name;
    EXPECT_GE(families.size(), 45u);
}

TEST(Exposition, LabelledSlotsSummedAcrossWorkers) {
    worker_metrics a, b;
    a.labelled.requests("public", "api", method_of("GET"), status_class_of(200)).inc(2);
    b.labelled.requests("public", "api", method_of("GET"), status_class_of(204)).inc(3);
    b.labelled.requests("public", "", method_of("BREW"), status_class_of(404)).inc();
    a.labelled.route("api").duration.observe(std::chrono::milliseconds(3));
    b.labelled.route("api").duration.observe(std::chrono::seconds(10));
    a.labelled.upstream("pool").connect_duration.observe(std::chrono::microseconds(400));
    a.labelled.listener("public").active_https.add(2);
    b.labelled.listener("public").active_https.add(-1);
    process_metrics process;
    const std::string text = render_prometheus({&a, &b}, process);
    const auto families = check(text);
    EXPECT_GT(families.at("sentinel_http_requests_total").samples, 0);
    auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
    EXPECT_TRUE(has(R"(sentinel_http_requests_total{listener="public",route="api",method="GET",status_class="2xx"} 5)"));
    EXPECT_TRUE(has(R"(sentinel_http_requests_total{listener="public",route="",method="other",status_class="4xx"} 1)"));
    EXPECT_TRUE(has(R"(sentinel_http_request_duration_seconds_bucket{route="api",le="0.005"} 1)"));
    EXPECT_TRUE(has(R"(sentinel_http_request_duration_seconds_bucket{route="api",le="+Inf"} 2)"));
    EXPECT_TRUE(has(R"(sentinel_http_request_duration_seconds_count{route="api"} 2)"));
    EXPECT_TRUE(has(R"(sentinel_upstream_connect_duration_seconds_bucket{upstream="pool",le="0.0005"} 1)"));
    EXPECT_TRUE(has(R"(sentinel_downstream_connections_active{listener="public",protocol="https"} 1)"));
}

TEST(Exposition, LabelValuesEscaped) {
    worker_metrics w;
    w.labelled.route("a\"b\\c").duration.observe(std::chrono::milliseconds(1));
    process_metrics process;
    const std::string text = render_prometheus({&w}, process);
    EXPECT_NE(text.find(R"(route="a\"b\\c")"), std::string::npos);
}

TEST(Exposition, MethodsAreABoundedSet) {
    EXPECT_STREQ(to_string(method_of("GET")), "GET");
    EXPECT_STREQ(to_string(method_of("OPTIONS")), "OPTIONS");
    EXPECT_STREQ(to_string(method_of("get")), "other");
    EXPECT_STREQ(to_string(method_of("PROPFIND")), "other");
    EXPECT_STREQ(status_class_name(status_class_of(99)), "other");
    EXPECT_STREQ(status_class_name(status_class_of(503)), "5xx");
}

TEST(Exposition, SlotsAreStableAndShared) {
    labelled_metrics m;
    auto& first = m.route("x");
    for (int i = 0; i < 1000; ++i) m.route("r" + std::to_string(i));
    EXPECT_EQ(&first, &m.route("x"));
    auto& c = m.requests("l", "x", http_method::get, 2);
    EXPECT_EQ(&c, &m.requests("l", "x", http_method::get, 2));
    EXPECT_NE(&c, &m.requests("l", "x", http_method::get, 3));
}

}  // namespace
}  // namespace sentinel::observability
