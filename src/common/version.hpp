#pragma once

namespace sentinel {
// Kept in step with project(VERSION) in the top-level CMakeLists.txt.
inline constexpr const char* version = "0.1.0";
}  // namespace sentinel
