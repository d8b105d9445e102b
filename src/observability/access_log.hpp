// Non-blocking log writer (access log and audit log: JSON lines). Workers format lines into their own batch buffer and hand
// whole batches over (one short lock per batch, never per request); a dedicated thread writes
// them. When the queue is full the batch is dropped and the caller counts it: a slow disk
// never stalls traffic.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace sentinel::observability {

class access_log {
public:
    // "-" writes to stdout. Returns null and sets `error` when the file cannot be opened;
    // `what` names the log in that error. Used for the access log and the audit log.
    static std::shared_ptr<access_log> open(const std::string& path, std::string& error,
                                            std::size_t max_queued_bytes = 8u << 20,
                                            std::string_view what = "access log");
    ~access_log();  // writes what is queued, then closes

    // Queues a batch of complete lines. Returns false (batch dropped) when the queue is full.
    bool submit(std::string&& batch);
    // Reopens the file (log rotation on SIGUSR1); stdout is left alone.
    void reopen();
    const std::string& path() const { return path_; }

private:
    access_log(std::string path, int fd, std::size_t max_queued_bytes);
    void run();

    std::string path_;
    int fd_;
    std::size_t max_queued_bytes_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::string> queue_;
    std::size_t queued_bytes_ = 0;
    bool stopping_ = false;
    bool reopen_requested_ = false;
    std::thread thread_;
};

// Appends `text` as the contents of a JSON string (no quotes), escaping per RFC 8259;
// bytes that are not valid UTF-8 become \u00XX so a hostile header cannot break the line.
void append_json_escaped(std::string& out, std::string_view text);

}  // namespace sentinel::observability
