#include "agents/denylist/rule_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sentinel::denylist {

namespace {

// Far above any sane denylist; a file this big is a mistake (a log pointed at by --list).
constexpr off_t max_file_size = 64 << 20;

}  // namespace

rule_store::rule_store(std::string path) : path_(std::move(path)), rules_(std::make_shared<const rule_set>()) {}

std::shared_ptr<const rule_set> rule_store::current() const {
    std::lock_guard lock(mutex_);
    return rules_;
}

void rule_store::replace(std::shared_ptr<const rule_set> rules) {
    std::lock_guard lock(mutex_);
    rules_ = std::move(rules);
}

rule_store::signature rule_store::stat_file() const {
    struct stat st{};
    if (::stat(path_.c_str(), &st) != 0) return {};
    return {true, st.st_dev, st.st_ino, st.st_size, std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
}

bool rule_store::changed() const { return !(stat_file() == tried_); }

bool rule_store::load(std::vector<std::string>& errors) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tried_ = {};
        errors.push_back(path_ + ": " + std::strerror(errno));
        return false;
    }
    struct stat st{};
    ::fstat(fd, &st);
    // The signature of what was actually read, so a change during the read triggers another.
    tried_ = {true, st.st_dev, st.st_ino, st.st_size, std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
    if (!S_ISREG(st.st_mode) || st.st_size > max_file_size) {
        ::close(fd);
        errors.push_back(path_ + ": " + (S_ISREG(st.st_mode) ? "larger than 64 MiB" : "not a regular file"));
        return false;
    }
    std::string text;
    char buf[64 * 1024];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            errors.push_back(path_ + ": " + std::strerror(e));
            return false;
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > static_cast<std::size_t>(max_file_size)) {
            ::close(fd);
            errors.push_back(path_ + ": larger than 64 MiB");
            return false;
        }
    }
    ::close(fd);

    auto rules = std::make_shared<rule_set>();
    std::vector<parse_error> parse_errors;
    if (!rule_set::parse(text, *rules, parse_errors)) {
        // A wrong file (a log passed to --list) would otherwise print one line per line.
        constexpr std::size_t shown = 20;
        for (std::size_t i = 0; i < parse_errors.size() && i < shown; ++i)
            errors.push_back(format_error(path_, parse_errors[i]));
        if (parse_errors.size() > shown)
            errors.push_back(path_ + ": " + std::to_string(parse_errors.size() - shown) + " more errors not shown");
        return false;
    }
    replace(std::move(rules));
    return true;
}

}  // namespace sentinel::denylist
