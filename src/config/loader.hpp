// Config loading: KDL text → document → schema check → semantic check → model::config.
// Runs on the main thread (never on workers); the result is an immutable snapshot.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/model/config.hpp"

namespace sentinel::config {

struct diagnostic {
    std::string file;  // path as given (or "<embedded>")
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    std::string message;  // what was expected, what was found, and "did you mean" if close
    std::string excerpt;  // the source line, for the caret display

    // "file:line:col: error: message" + excerpt and caret lines when known.
    std::string format() const;
};

struct load_result {
    std::shared_ptr<const config> cfg;     // set only when errors is empty
    std::vector<diagnostic> errors;        // every error found, not only the first
    std::vector<diagnostic> warnings;
    bool ok() const { return cfg != nullptr; }
};

// Loads and fully validates a config file (includes, ${ENV} substitution, semantic checks).
load_result load_file(const std::string& path);

// Loads config text; `name` is used in diagnostics and `base_dir` resolves relative paths.
load_result load_text(std::string_view text, const std::string& name, const std::string& base_dir);

// The built-in default configuration (used by `sentinel run` without -c).
std::string_view embedded_default();

// Keys whose change a reload cannot apply ("system.workers", ...): empty when `next` can
// replace `current` live.
std::vector<std::string> restart_required_changes(const config& current, const config& next);

}  // namespace sentinel::config
