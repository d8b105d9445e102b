// A hashed timing wheel for connection deadlines. Every connection re-arms its deadline
// several times per request (idle → upstream response → body → idle); with one Asio timer per
// connection, every move to an earlier deadline cancelled the timer and resumed a watchdog.
// Here moving a deadline is two pointer updates, and a worker keeps one timer that ticks at
// the wheel's resolution while any deadline is pending. Deadlines fire at most one tick late.
// Single-threaded, like everything a worker owns; no Asio inside.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace sentinel::runtime {

class deadline_wheel {
public:
    using clock = std::chrono::steady_clock;

    class entry {
    public:
        // Unlinks itself, so an entry may be destroyed while scheduled.
        virtual ~entry() {
            if (wheel_ != nullptr) wheel_->unlink(*this);
        }
        bool scheduled() const { return wheel_ != nullptr; }

    protected:
        // Called by advance() once the deadline has passed; the entry is no longer scheduled.
        virtual void expire() = 0;

    private:
        friend class deadline_wheel;
        entry* prev_ = nullptr;
        entry* next_ = nullptr;
        deadline_wheel* wheel_ = nullptr;
        std::uint64_t tick_ = 0;
    };

    explicit deadline_wheel(std::chrono::milliseconds resolution = std::chrono::milliseconds(10),
                            std::size_t slots = 4096, clock::time_point epoch = clock::now());
    ~deadline_wheel();
    deadline_wheel(const deadline_wheel&) = delete;
    deadline_wheel& operator=(const deadline_wheel&) = delete;

    // (Re)schedules `e` to expire once `deadline` has passed.
    void schedule(entry& e, clock::time_point deadline);
    void cancel(entry& e);

    // Expires every entry whose deadline is at or before `now`.
    void advance(clock::time_point now);

    std::size_t size() const { return size_; }
    std::chrono::milliseconds resolution() const { return resolution_; }

private:
    std::uint64_t tick_of(clock::time_point t) const;
    void unlink(entry& e);

    std::chrono::milliseconds resolution_;
    clock::time_point epoch_;
    std::vector<entry*> slots_;  // heads of intrusive lists
    static constexpr std::uint64_t pending_expiry = ~std::uint64_t{0};

    std::uint64_t done_tick_ = 0;  // every tick up to this one has been processed
    std::size_t size_ = 0;
    std::vector<entry*> expiring_;  // reused by advance()
};

}  // namespace sentinel::runtime
