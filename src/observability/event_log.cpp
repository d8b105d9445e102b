#include "observability/event_log.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <string>
#include <unordered_map>

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include "observability/access_log.hpp"

namespace sentinel::observability::event_log {

namespace {

// The text layout main() installs; configure(text) puts it back after a JSON period.
constexpr const char* text_pattern = "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v";
// Marks a payload that is already a JSON fragment (`"msg":...,"key":...`), so the JSON
// formatter does not escape it again. Plain spdlog calls carry no mark and become "msg".
constexpr char json_mark = '\x1e';

std::atomic<bool> json_mode{false};
std::atomic<std::uint32_t> limit{5};
std::atomic<std::uint64_t> suppressed{0};
std::atomic<std::uint64_t> pending_reports{0};  // templates with suppressed lines not yet reported

struct template_state {
    std::chrono::steady_clock::time_point window_start;
    std::uint32_t written = 0;     // in the current window
    std::uint64_t suppressed = 0;  // in the current window
    level lvl = level::warn;
};
std::mutex limiter_mutex;
std::unordered_map<std::string, template_state> templates;  // bounded: templates are literals

spdlog::level::level_enum to_spdlog(level l) {
    switch (l) {
    case level::debug: return spdlog::level::debug;
    case level::info: return spdlog::level::info;
    case level::warn: return spdlog::level::warn;
    case level::error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

const char* level_name(spdlog::level::level_enum l) {
    switch (l) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
    }
}

bool needs_quotes(std::string_view v) {
    if (v.empty()) return true;
    for (char c : v) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == '"' || c == '=' || c == '\\') return true;
    }
    return false;
}

void render(std::string& out, std::string_view message, std::initializer_list<field> fields) {
    if (json_mode.load(std::memory_order_relaxed)) {
        out += json_mark;
        out += "\"msg\":\"";
        append_json_escaped(out, message);
        out += '"';
        for (const auto& f : fields) {
            out += ",\"";
            append_json_escaped(out, f.key);
            out += "\":\"";
            append_json_escaped(out, f.value);
            out += '"';
        }
        return;
    }
    out += message;
    for (const auto& f : fields) {
        out += ' ';
        out += f.key;
        out += '=';
        if (needs_quotes(f.value)) {
            out += '"';
            append_json_escaped(out, f.value);
            out += '"';
        } else {
            out += f.value;
        }
    }
}

void emit(level lvl, std::string_view message, std::initializer_list<field> fields) {
    std::string line;
    render(line, message, fields);
    spdlog::default_logger_raw()->log(to_spdlog(lvl), "{}", line);
}

void report(const std::string& message, template_state& s) {
    const std::string count = std::to_string(s.suppressed);
    emit(s.lvl, "suppressed similar messages", {{"count", count}, {"message", message}});
    s.suppressed = 0;
    pending_reports.fetch_sub(1, std::memory_order_relaxed);
}

// {"ts":"2026-11-26T23:59:59.123Z","level":"warn","msg":"...",...}
class json_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        std::string out = "{\"ts\":\"";
        const auto since = msg.time.time_since_epoch();
        const std::time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since).count();
        std::tm tm{};
        gmtime_r(&seconds, &tm);
        char stamp[32];
        const auto n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        out.append(stamp, n);
        const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000;
        char frac[8];
        std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(millis));
        out += frac;
        out += "\",\"level\":\"";
        out += level_name(msg.level);
        out += "\",";
        const std::string_view payload(msg.payload.data(), msg.payload.size());
        if (!payload.empty() && payload.front() == json_mark) {
            out.append(payload.substr(1));
        } else {
            out += "\"msg\":\"";
            append_json_escaped(out, payload);
            out += '"';
        }
        out += "}\n";
        dest.append(out.data(), out.data() + out.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }
};

}  // namespace

void configure(bool json, level min_level, std::uint32_t repeat_limit) {
    json_mode.store(json, std::memory_order_relaxed);
    limit.store(repeat_limit, std::memory_order_relaxed);
    auto logger = spdlog::default_logger();
    if (json) logger->set_formatter(std::make_unique<json_formatter>());
    else logger->set_pattern(text_pattern);
    spdlog::set_level(to_spdlog(min_level));
}

void write(level lvl, std::string_view message, std::initializer_list<field> fields) {
    if (!spdlog::default_logger_raw()->should_log(to_spdlog(lvl))) return;
    const std::uint32_t max = limit.load(std::memory_order_relaxed);
    if (max == 0) {
        emit(lvl, message, fields);
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(limiter_mutex);
        auto [it, inserted] = templates.try_emplace(std::string(message));
        template_state& s = it->second;
        if (inserted || now - s.window_start >= std::chrono::seconds(1)) {
            if (s.suppressed > 0) report(it->first, s);
            s.window_start = now;
            s.written = 0;
        }
        if (s.written >= max) {
            if (s.suppressed++ == 0) pending_reports.fetch_add(1, std::memory_order_relaxed);
            s.lvl = lvl;
            suppressed.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        ++s.written;
    }
    emit(lvl, message, fields);
}

void flush_suppressed() {
    if (pending_reports.load(std::memory_order_relaxed) == 0) return;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(limiter_mutex);
    for (auto& [message, s] : templates) {
        if (s.suppressed == 0 || now - s.window_start < std::chrono::seconds(1)) continue;
        report(message, s);
        // A new window starts with the report, so the next occurrence is written again.
        s.window_start = now;
        s.written = 0;
    }
}

std::uint64_t suppressed_total() { return suppressed.load(std::memory_order_relaxed); }

}  // namespace sentinel::observability::event_log
