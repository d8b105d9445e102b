// The SDK's log: one line per event on stderr (systemd's journal picks it up). Agents log
// rarely — start-up, reloads, protocol errors — so there is no level or formatting machinery.
#pragma once

#include <string_view>

namespace sentinel::agent_sdk {

// Sets the program name that prefixes every line ("sentinel-echo-agent: ...").
void set_log_name(std::string_view name);

// Writes "<name>: <message>\n" (each line of a multi-line message prefixed) with a single
// write(2), so lines from several threads do not interleave.
void log_line(std::string_view message);

}  // namespace sentinel::agent_sdk
