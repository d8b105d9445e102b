// Session-ticket keys of one TLS listener. A key encrypts new tickets for one rotation
// period and is still accepted for one more, so a ticket outlives a rotation but not two.
// The object is shared (shared_ptr) by the listener's contexts across rebuilds: a reload
// or a certificate renewal does not throw away every client's resumption.
//
// Thread-safety: every worker's handshakes call in concurrently. The common path is a time
// compare plus an atomic load of the immutable key generation; the mutex is taken only to
// make a new generation when a rotation is due.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

namespace sentinel::tls {

class ticket_keys {
public:
    static constexpr std::size_t name_size = 16;  // the key name OpenSSL puts in each ticket

    struct key {
        std::array<unsigned char, name_size> name{};
        std::array<unsigned char, 32> aes{};   // AES-256-CBC
        std::array<unsigned char, 32> hmac{};  // HMAC-SHA256
    };

    // How a ticket's key name was recognised by find().
    enum class match { unknown, current, previous };

    explicit ticket_keys(std::chrono::nanoseconds rotation);

    // A reloaded listener may have a new rotation period; it applies from the next rotation.
    void set_rotation(std::chrono::nanoseconds rotation);

    // The key new tickets are encrypted with (rotates first when the period is over).
    key current();
    // The key a ticket was encrypted with, if it is still accepted. `previous` means the
    // ticket should be renewed under the current key.
    match find(const unsigned char* name, key& out);

    // Tests: pretend this much more time has passed (rotation without sleeping).
    void advance_clock_for_test(std::chrono::nanoseconds by);

private:
    struct generation {
        key current;
        std::optional<key> previous;
        std::int64_t made_ns = 0;  // when `current` became current
    };

    std::int64_t now_ns() const;
    std::shared_ptr<const generation> fresh();  // the generation, rotated if due
    static key random_key();

    std::atomic<std::int64_t> rotation_ns_;
    std::atomic<std::int64_t> next_rotation_ns_;  // fast path: no rotation before this
    std::atomic<std::int64_t> clock_offset_ns_{0};
    std::atomic<std::shared_ptr<const generation>> generation_;
    std::mutex rotate_mutex_;
};

}  // namespace sentinel::tls
