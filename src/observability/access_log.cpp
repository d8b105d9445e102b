#include "observability/access_log.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace sentinel::observability {

namespace {
int open_file(const std::string& path) {
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

void write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // disk full or closed pipe: the log is best effort, traffic goes on
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}
}  // namespace

std::shared_ptr<access_log> access_log::open(const std::string& path, std::string& error,
                                             std::size_t max_queued_bytes, std::string_view what) {
    int fd = STDOUT_FILENO;
    if (path != "-") {
        fd = open_file(path);
        if (fd < 0) {
            error = "cannot open " + std::string(what) + " " + path + ": " + std::strerror(errno);
            return nullptr;
        }
    }
    return std::shared_ptr<access_log>(new access_log(path, fd, max_queued_bytes));
}

access_log::access_log(std::string path, int fd, std::size_t max_queued_bytes)
    : path_(std::move(path)), fd_(fd), max_queued_bytes_(max_queued_bytes),
      thread_([this] { run(); }) {}

access_log::~access_log() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    if (fd_ != STDOUT_FILENO) ::close(fd_);
}

bool access_log::submit(std::string&& batch) {
    {
        std::lock_guard lock(mutex_);
        if (queued_bytes_ + batch.size() > max_queued_bytes_) return false;
        queued_bytes_ += batch.size();
        queue_.push_back(std::move(batch));
    }
    wake_.notify_one();
    return true;
}

void access_log::reopen() {
    {
        std::lock_guard lock(mutex_);
        reopen_requested_ = true;
    }
    wake_.notify_one();
}

void access_log::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || reopen_requested_ || !queue_.empty(); });
        if (reopen_requested_) {
            reopen_requested_ = false;
            if (fd_ != STDOUT_FILENO) {
                const int fd = open_file(path_);
                if (fd >= 0) {
                    ::close(fd_);
                    fd_ = fd;
                }
            }
        }
        while (!queue_.empty()) {
            std::string batch = std::move(queue_.front());
            queue_.pop_front();
            queued_bytes_ -= batch.size();
            lock.unlock();
            write_all(fd_, batch);
            lock.lock();
        }
        if (stopping_) return;
    }
}

void append_json_escaped(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    // Runs of plain printable ASCII (nearly every byte of a request line) are appended whole:
    // one append per run instead of one per byte.
    std::size_t run = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') continue;
        out.append(text.data() + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else {
            // Control and non-ASCII bytes are escaped byte-wise: cheap, and never yields
            // invalid UTF-8 in the log.
            const char escaped[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
            out.append(escaped, sizeof escaped);
        }
    }
    out.append(text.data() + run, text.size() - run);
}

}  // namespace sentinel::observability
