#include "agents/sdk/cpp/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>

namespace sentinel::agent_sdk {

namespace {
std::mutex name_mutex;
std::string log_name = "agent";
}  // namespace

void set_log_name(std::string_view name) {
    std::lock_guard lock(name_mutex);
    log_name.assign(name);
}

void log_line(std::string_view message) {
    std::string prefix;
    {
        std::lock_guard lock(name_mutex);
        prefix = log_name;
    }
    prefix += ": ";
    // Every line of a multi-line message gets the prefix, so each is attributable in a journal.
    std::string line;
    line.reserve(message.size() + prefix.size() + 1);
    for (;;) {
        const auto nl = message.find('\n');
        line += prefix;
        line += message.substr(0, nl);
        line += '\n';
        if (nl == std::string_view::npos || nl + 1 == message.size()) break;
        message.remove_prefix(nl + 1);
    }
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        const ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // stderr is gone: nothing sensible left to do
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace sentinel::agent_sdk
