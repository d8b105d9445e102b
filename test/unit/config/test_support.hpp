// Helpers shared by the config tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/loader.hpp"

namespace sentinel::config::testing {

// A fresh temporary directory, removed with its contents at scope exit.
class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "sentinel-config-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data());
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }
    std::string write(const std::string& name, const std::string& text) const {
        auto p = std::filesystem::path(path_) / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p) << text;
        return p.string();
    }

private:
    std::string path_;
};

inline load_result load(std::string_view text, const std::string& base_dir = ".") {
    return load_text(text, "test.kdl", base_dir);
}

// All messages, formatted, for failure output.
inline std::string dump(const load_result& r) {
    std::string s;
    for (const auto& d : r.errors) s += d.format() + "\n";
    return s;
}

// The error whose message contains `needle`, or null.
inline const diagnostic* find_error(const load_result& r, std::string_view needle) {
    for (const auto& d : r.errors)
        if (d.message.find(needle) != std::string::npos) return &d;
    return nullptr;
}

// Asserts that loading `text` fails with an error containing `needle` at line:col.
inline ::testing::AssertionResult has_error(const load_result& r, std::string_view needle, std::uint32_t line,
                                            std::uint32_t column) {
    if (r.ok()) return ::testing::AssertionFailure() << "config loaded without errors";
    const diagnostic* d = find_error(r, needle);
    if (d == nullptr)
        return ::testing::AssertionFailure() << "no error containing [" << needle << "]; errors:\n" << dump(r);
    if (d->line != line || d->column != column)
        return ::testing::AssertionFailure() << "error [" << d->message << "] at " << d->line << ":" << d->column
                                             << ", expected " << line << ":" << column;
    return ::testing::AssertionSuccess();
}

}  // namespace sentinel::config::testing
