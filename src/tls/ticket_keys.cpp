#include "tls/ticket_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

namespace sentinel::tls {

ticket_keys::ticket_keys(std::chrono::nanoseconds rotation)
    : rotation_ns_(rotation.count() > 0 ? rotation.count() : 1) {
    auto first = std::make_shared<generation>();
    first->current = random_key();
    first->made_ns = now_ns();
    next_rotation_ns_.store(first->made_ns + rotation_ns_.load());
    generation_.store(std::move(first));
}

void ticket_keys::set_rotation(std::chrono::nanoseconds rotation) {
    const std::int64_t ns = rotation.count() > 0 ? rotation.count() : 1;
    std::lock_guard lock(rotate_mutex_);
    rotation_ns_.store(ns);
    next_rotation_ns_.store(generation_.load()->made_ns + ns);
}

ticket_keys::key ticket_keys::current() { return fresh()->current; }

ticket_keys::match ticket_keys::find(const unsigned char* name, key& out) {
    const auto g = fresh();
    // Constant-time compares: the name is not secret, but there is no reason to leak more
    // about our keys than needed.
    if (CRYPTO_memcmp(name, g->current.name.data(), name_size) == 0) {
        out = g->current;
        return match::current;
    }
    if (g->previous && CRYPTO_memcmp(name, g->previous->name.data(), name_size) == 0) {
        out = *g->previous;
        return match::previous;
    }
    return match::unknown;
}

void ticket_keys::advance_clock_for_test(std::chrono::nanoseconds by) { clock_offset_ns_ += by.count(); }

std::int64_t ticket_keys::now_ns() const {
    const auto now = std::chrono::steady_clock::now().time_since_epoch();
    return std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() + clock_offset_ns_.load();
}

std::shared_ptr<const ticket_keys::generation> ticket_keys::fresh() {
    const std::int64_t now = now_ns();
    if (now < next_rotation_ns_.load(std::memory_order_relaxed)) return generation_.load();

    std::lock_guard lock(rotate_mutex_);
    auto old = generation_.load();
    const std::int64_t period = rotation_ns_.load();
    if (now < old->made_ns + period) return old;  // another thread rotated meanwhile

    auto next = std::make_shared<generation>();
    next->current = random_key();
    next->made_ns = now;
    // The old current key stays acceptable until one period after it stopped encrypting;
    // after a long idle stretch it may already be past that and is dropped as well.
    if (now < old->made_ns + 2 * period) next->previous = old->current;
    next_rotation_ns_.store(now + period);
    generation_.store(next);
    return next;
}

ticket_keys::key ticket_keys::random_key() {
    key k;
    if (RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) != 1 ||
        RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) != 1 ||
        RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size())) != 1) {
        // Without a working random generator no TLS is safe; there is nothing to fall back to.
        std::fputs("sentinel: RAND_bytes failed making a session ticket key\n", stderr);
        std::abort();
    }
    return k;
}

}  // namespace sentinel::tls
