#include "agents/sdk/cpp/run_agent.hpp"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>

#include "agents/sdk/cpp/log.hpp"

namespace sentinel::agent_sdk {

void flag_set::add(std::string name, std::string value_name, std::string help, apply_fn apply, bool required) {
    flags_.push_back({std::move(name), std::move(value_name), std::move(help), std::move(apply), required});
}

void flag_set::add_string(std::string name, std::string value_name, std::string help, std::string& target,
                          bool required) {
    auto check_name = name;
    add(std::move(name), std::move(value_name), std::move(help),
        [&target, check_name](std::string_view v, std::string& error) {
            if (v.empty()) {
                error = "--" + check_name + " needs a non-empty value";
                return false;
            }
            target.assign(v);
            return true;
        },
        required);
}

void flag_set::add_unsigned(std::string name, std::string value_name, std::string help, unsigned& target,
                            unsigned max) {
    auto check_name = name;
    add(std::move(name), std::move(value_name), std::move(help),
        [&target, check_name, max](std::string_view v, std::string& error) {
            unsigned n = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc{} || end != v.data() + v.size() || n > max) {
                error = "--" + check_name + " expects an integer from 0 to " + std::to_string(max) + ", got \"" +
                        std::string(v) + "\"";
                return false;
            }
            target = n;
            return true;
        });
}

void flag_set::add_switch(std::string name, std::string help, bool& target) {
    add(std::move(name), "", std::move(help), [&target](std::string_view, std::string&) {
        target = true;
        return true;
    });
}

bool flag_set::parse(int argc, const char* const* argv, std::string& error) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (!arg.starts_with("--") || arg.size() == 2) {
            error = "unexpected argument \"" + std::string(arg) + "\"";
            return false;
        }
        arg.remove_prefix(2);
        std::string_view name = arg;
        std::optional<std::string_view> value;
        if (const auto eq = arg.find('='); eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
        }
        flag* f = nullptr;
        for (auto& candidate : flags_)
            if (candidate.name == name) f = &candidate;
        if (!f) {
            error = "unknown flag --" + std::string(name);
            return false;
        }
        if (f->seen) {
            error = "--" + f->name + " is given more than once";
            return false;
        }
        f->seen = true;
        if (f->value_name.empty()) {
            if (value) {
                error = "--" + f->name + " takes no value";
                return false;
            }
        } else if (!value) {
            if (i + 1 >= argc) {
                error = "--" + f->name + " needs a value (" + f->value_name + ")";
                return false;
            }
            value = argv[++i];
        }
        if (!f->apply(value.value_or(""), error)) return false;
    }
    for (const auto& f : flags_) {
        if (f.required && !f.seen) {
            error = "--" + f.name + " is required";
            return false;
        }
    }
    return true;
}

std::string flag_set::usage(std::string_view program, std::string_view summary) const {
    std::string u = "usage: " + std::string(program);
    for (const auto& f : flags_) {
        if (!f.required) continue;
        u += " --" + f.name + " " + f.value_name;
    }
    u += " [options]\n";
    if (!summary.empty()) u += std::string(summary) + "\n";
    u += "\noptions:\n";
    for (const auto& f : flags_) {
        std::string left = "  --" + f.name + (f.value_name.empty() ? "" : " " + f.value_name);
        if (left.size() < 28) left.resize(28, ' ');
        else left += "  ";
        u += left + f.help + "\n";
    }
    return u;
}

namespace {

// "2", "0.5", "30.25": seconds with up to three decimals, at most an hour.
std::optional<std::chrono::milliseconds> parse_seconds(std::string_view v) {
    const auto dot = v.find('.');
    const std::string_view whole = v.substr(0, dot);
    const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : v.substr(dot + 1);
    if (whole.empty() || (dot != std::string_view::npos && (frac.empty() || frac.size() > 3))) return std::nullopt;
    unsigned s = 0;
    auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), s);
    if (ec != std::errc{} || end != whole.data() + whole.size() || s > 3600) return std::nullopt;
    unsigned ms = 0;
    if (!frac.empty()) {
        std::string padded(frac);
        padded.resize(3, '0');
        auto [fend, fec] = std::from_chars(padded.data(), padded.data() + 3, ms);
        if (fec != std::errc{} || fend != padded.data() + 3) return std::nullopt;
    }
    if (s == 3600 && ms > 0) return std::nullopt;
    return std::chrono::milliseconds(std::int64_t{s} * 1000 + ms);
}

std::string format_seconds(std::chrono::milliseconds ms) {
    std::string out = std::to_string(ms.count() / 1000);
    if (ms.count() % 1000 != 0) {
        char frac[8];
        std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms.count() % 1000));
        out += frac;
        while (out.back() == '0') out.pop_back();
    }
    return out;
}

// Written to a temporary name and renamed, so a reader never sees a half-written address.
bool write_ready_file(const std::string& path, const std::string& address, std::string& error) {
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    bool ok = f != nullptr && std::fputs((address + "\n").c_str(), f) >= 0;
    if (f != nullptr && std::fclose(f) != 0) ok = false;
    if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) ok = false;
    if (!ok) {
        error = "cannot write the ready file " + path + ": " + std::strerror(errno);
        std::remove(tmp.c_str());
        return false;
    }
    return true;
}

}  // namespace

int run_agent(int argc, const char* const* argv, agent_spec spec) {
    set_log_name(spec.name);
    std::string socket;
    bool help = false;
    bool version = false;
    flag_set flags;
    flags.add_string("socket", "PATH", "Unix socket path, or tcp://HOST:PORT, to listen on", socket,
                      /*required=*/true);
    flags.add_unsigned("worker-threads", "N",
                       "run handlers on N threads (default 0: on the I/O thread)", spec.options.worker_threads, 1024);
    std::string ready_file;
    flags.add_string("ready-file", "FILE",
                     "once listening, write the bound address here (atomically): wait for it, not a sleep",
                     ready_file);
    flags.add(
        "drain-timeout", "S",
        "on SIGTERM/SIGINT, let open streams finish for at most S seconds (default " +
            format_seconds(spec.options.drain_timeout) + ")",
        [&spec](std::string_view v, std::string& error) {
            const auto ms = parse_seconds(v);
            if (!ms) {
                error = "--drain-timeout expects seconds from 0 to 3600, got \"" + std::string(v) + "\"";
                return false;
            }
            spec.options.drain_timeout = *ms;
            return true;
        });
    if (spec.add_flags) spec.add_flags(flags);
    flags.add_switch("help", "print this help and exit", help);
    flags.add_switch("version", "print the version and exit", version);

    const char* program = argc > 0 ? argv[0] : spec.name.c_str();
    std::string error;
    const bool parsed = flags.parse(argc, argv, error);
    // --help wins over other mistakes on the same line, so it always shows how to fix them.
    if (help) {
        std::fputs(flags.usage(program, spec.summary).c_str(), stdout);
        return 0;
    }
    if (version) {
        std::printf("%s %s\n", spec.name.c_str(), spec.version.c_str());
        return 0;
    }
    if (!parsed) {
        std::fprintf(stderr, "%s: %s\n%s", spec.name.c_str(), error.c_str(), flags.usage(program, spec.summary).c_str());
        return 2;
    }

    spec.options.name = spec.name;
    spec.options.version = spec.version;
    try {
        server srv(spec.options, std::move(spec.make_handler));
        if (spec.start && !spec.start(srv, error)) {
            log_line(error);
            return 1;
        }
        if (!srv.listen(socket, error)) {
            log_line("cannot listen: " + error);
            return 1;
        }
        if (!ready_file.empty() && !write_ready_file(ready_file, srv.bound_address(), error)) {
            log_line(error);
            return 1;
        }
        log_line(spec.version + " listening on " + srv.bound_address() +
                 (spec.options.worker_threads > 0 ? " with " + std::to_string(spec.options.worker_threads) +
                                                        " worker threads"
                                                  : ""));
        const int status = srv.run();
        // A ready file outliving the agent would tell the next waiter it is up already.
        if (!ready_file.empty()) std::remove(ready_file.c_str());
        log_line("stopped");
        return status;
    } catch (const std::exception& e) {
        log_line(std::string("fatal: ") + e.what());
        return 1;
    }
}

}  // namespace sentinel::agent_sdk
