// sentinel — command line entry point. Thin: parses arguments and calls into config/server.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/route_explain.hpp"
#include "common/version.hpp"
#include "config/loader.hpp"
#include "server/server.hpp"

namespace {

constexpr const char* usage =
    "usage: sentinel <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [-c FILE]       serve traffic in the foreground (logs to stderr); without -c,\n"
    "                      the built-in default config (127.0.0.1:8080, status page)\n"
    "  validate FILE       check a config file; prints every error, exits 1 if any\n"
    "  route-explain FILE --url URL [--method M] [-H 'name: value']...\n"
    "                      which route a request takes, and why earlier routes did not\n"
    "                      match; exits 1 when none does\n"
    "  version             print the version\n"
    "  help, --help, -h    this text\n"
    "\n"
    "signals (run): SIGHUP reloads the config, SIGTERM/SIGINT shut down gracefully\n"
    "(a second one exits at once), SIGUSR1 reopens the access and audit logs.\n";

void print_errors(const sentinel::config::load_result& result) {
    for (const auto& d : result.errors) std::fprintf(stderr, "%s\n", d.format().c_str());
    for (const auto& d : result.warnings) std::fprintf(stderr, "%s\n", d.format().c_str());
}

int validate(const std::string& path) {
    const auto result = sentinel::config::load_file(path);
    print_errors(result);
    if (!result.ok()) {
        std::fprintf(stderr, "%s: %zu error%s\n", path.c_str(), result.errors.size(),
                     result.errors.size() == 1 ? "" : "s");
        return 1;
    }
    const auto& c = *result.cfg;
    std::printf("%s: OK (%zu listeners, %zu routes, %zu upstreams, %zu agents; hash %s)\n", path.c_str(),
                c.listeners.size(), c.routes.size(), c.upstreams.size(), c.agents.size(), c.hash.c_str());
    // Offline, nobody checks an agent's own block: its agent does, when Sentinel starts or reloads.
    for (const auto& a : c.agents) {
        if (!a.block) continue;
        std::printf("%s:%u:%u: note: agent \"%s\"'s config block was not checked (its agent checks it when "
                    "`sentinel run` starts or reloads)\n",
                    a.block_file.c_str(), a.block->pos.line, a.block->pos.column, a.id.c_str());
    }
    return 0;
}

int run(const std::string& path) {
    auto logger = spdlog::stderr_color_mt("sentinel");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
    const auto result = path.empty()
                            ? sentinel::config::load_text(sentinel::config::embedded_default(), "<embedded>", ".")
                            : sentinel::config::load_file(path);
    print_errors(result);
    if (!result.ok()) return 1;
    spdlog::info("sentinel {} starting with {}", sentinel::version,
                 path.empty() ? std::string("the built-in default config") : path);
    sentinel::server::server server({path}, result.cfg);
    return server.run();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(usage, stderr);
        return 2;
    }
    const std::string_view command = argv[1];
    if (command == "help" || command == "--help" || command == "-h") {
        std::fputs(usage, stdout);
        return 0;
    }
    if (command == "version" || command == "--version") {
        std::printf("sentinel %s\n", sentinel::version);
        return 0;
    }
    if (command == "validate") {
        if (argc != 3) {
            std::fputs("usage: sentinel validate FILE\n", stderr);
            return 2;
        }
        return validate(argv[2]);
    }
    if (command == "route-explain") return sentinel::cli::route_explain(argc - 2, argv + 2);
    if (command == "run") {
        std::string path;
        for (int i = 2; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
                path = argv[++i];
            } else {
                std::fprintf(stderr, "sentinel run: unexpected argument '%s'\n%s", argv[i], usage);
                return 2;
            }
        }
        return run(path);
    }
    std::fprintf(stderr, "sentinel: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
