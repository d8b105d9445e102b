// The error/event log: leveled, structured lines on spdlog's default logger (standard error),
// as text ("message key=value ...") or as JSON objects, with repeated messages rate-limited.
//
// A message is a fixed template ("upstream TLS handshake failed"); what varies goes in the
// fields. The template is also the rate-limit key: past `repeat_limit` lines per second for
// one template, lines are only counted, and when that second is over one line says how many
// were suppressed. So a failure hit by every request (an upstream whose certificate does not
// verify) costs a few lines per second instead of one per request, and is still visible.
//
// Thread-safe: workers, the DNS thread and the main thread all write here. The limiter takes
// a mutex, which is fine on the error paths that log; the data path never logs.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace sentinel::observability::event_log {

enum class level : std::uint8_t { debug, info, warn, error };

struct field {
    std::string_view key;
    std::string_view value;
};

// Applies `error-log` settings to spdlog's default logger (call after it is installed; again
// on reload). Lines written with spdlog directly take the same format.
void configure(bool json, level min_level, std::uint32_t repeat_limit);

void write(level lvl, std::string_view message, std::initializer_list<field> fields = {});
inline void debug(std::string_view m, std::initializer_list<field> f = {}) { write(level::debug, m, f); }
inline void info(std::string_view m, std::initializer_list<field> f = {}) { write(level::info, m, f); }
inline void warn(std::string_view m, std::initializer_list<field> f = {}) { write(level::warn, m, f); }
inline void error(std::string_view m, std::initializer_list<field> f = {}) { write(level::error, m, f); }

// Writes the "suppressed N similar messages" line of every template whose second is over.
// Called periodically (worker housekeeping), so a flood that stops is still reported.
void flush_suppressed();

// Lines suppressed since start (sentinel_log_suppressed_lines_total).
std::uint64_t suppressed_total();

}  // namespace sentinel::observability::event_log
