#include "upstream/endpoint_state.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

// Concurrency notes. Every worker calls acquire()/report() on the same endpoint_state, so
// each transition is a compare-exchange that exactly one thread wins; the winner does the
// bookkeeping that goes with it (resetting counters, giving back an ejection slot). Plain
// counters are relaxed. The breaker word itself is published with release/acquire because
// the thread that opens it stores open_until and the probe figures first, and an acquirer
// that sees `open` must also see when it ends.
//
// Probe accounting is approximate by design: report() gets no token saying whether its
// request held a probe slot, so any report while half-open releases one slot (saturating at
// zero). A request admitted while closed that finishes during half-open can thus let one
// extra probe in; a slot can never leak, because opening the breaker resets the count and
// a reservation that races with a state change is undone (see acquire()).

namespace sentinel::upstream {

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

std::uint32_t at_least_one(std::uint32_t n) { return n == 0 ? 1 : n; }

// fetch_sub that stops at zero: several paths release slots they may not hold (see above).
template <class T>
void saturating_decrement(std::atomic<T>& a) {
    T cur = a.load(relaxed);
    while (cur > 0 && !a.compare_exchange_weak(cur, cur - 1, relaxed, relaxed)) {
    }
}

std::int64_t ms(config::duration d) { return static_cast<std::int64_t>(d.count()); }

// How many endpoints of `count` may be ejected at once. At least one when percent > 0 (a
// share of a small group rounds down to zero, which would make outlier detection useless
// for 1-3 endpoints), and never every endpoint: ejecting the last one only trades errors
// from a bad endpoint for 503s from the proxy.
std::uint32_t ejection_cap(std::uint32_t count, std::uint32_t percent) {
    if (percent == 0 || count <= 1) return 0;
    auto cap = static_cast<std::uint32_t>(std::uint64_t{count} * std::min(percent, 100u) / 100);
    return std::clamp<std::uint32_t>(cap, 1, count - 1);
}

}  // namespace

std::int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

endpoint_state::endpoint_state(std::string key_, std::shared_ptr<upstream_state> owner_, bool start_healthy)
    : key(std::move(key_)), owner_ptr(std::move(owner_)), owner(*owner_ptr), healthy(start_healthy) {}

endpoint_state::~endpoint_state() {
    // An ejection nobody noticed expiring still holds its slot in the owner's count.
    if (ejected_until.load(relaxed) != 0) saturating_decrement(owner.ejected);
}

bool endpoint_state::available(std::int64_t now) const {
    if (!healthy.load(relaxed)) return false;
    if (now < ejected_until.load(relaxed)) return false;
    switch (breaker.load(std::memory_order_acquire)) {
    case breaker_state::closed:
        return true;
    case breaker_state::open:
        return now >= open_until.load(relaxed);
    case breaker_state::half_open:
        return probes_in_flight.load(relaxed) < probe_limit.load(relaxed);
    }
    return false;
}

bool endpoint_state::sweep_ejection(std::int64_t now) {
    std::int64_t until = ejected_until.load(relaxed);
    if (until == 0 || until > now) return false;
    // Only the thread that clears this exact value gives the slot back.
    if (!ejected_until.compare_exchange_strong(until, 0, relaxed, relaxed)) return false;
    saturating_decrement(owner.ejected);
    return true;
}

bool endpoint_state::acquire(std::int64_t now, const config::circuit_breaker_config* cb) {
    // Noticing an expired ejection here costs one load of a line this call touches anyway.
    std::int64_t until = ejected_until.load(relaxed);
    if (until != 0 && until <= now) sweep_ejection(now);

    if (cb == nullptr) return true;
    const std::uint32_t limit = at_least_one(cb->half_open_probes);
    for (;;) {
        breaker_state s = breaker.load(std::memory_order_acquire);
        switch (s) {
        case breaker_state::closed:
            return true;
        case breaker_state::open:
            if (now < open_until.load(relaxed)) return false;
            probe_limit.store(limit, relaxed);
            // Winner or loser, the breaker is now half-open: go reserve a probe like everyone.
            breaker.compare_exchange_strong(s, breaker_state::half_open, std::memory_order_acq_rel,
                                            std::memory_order_acquire);
            continue;
        case breaker_state::half_open: {
            std::uint32_t probes = probes_in_flight.load(relaxed);
            do {
                if (probes >= limit) return false;
            } while (!probes_in_flight.compare_exchange_weak(probes, probes + 1, relaxed, relaxed));
            // The breaker may have closed or re-opened (resetting the count) between the load
            // above and the reservation; a slot taken in another state would never be given
            // back, so undo it and decide again.
            if (breaker.load(std::memory_order_acquire) == breaker_state::half_open) return true;
            saturating_decrement(probes_in_flight);
            continue;
        }
        }
        return false;
    }
}

namespace {

void open_breaker(endpoint_state& e, std::int64_t now, const config::circuit_breaker_config& cb,
                  breaker_state from) {
    // Published by the CAS below: an acquirer that sees `open` sees these too.
    e.open_until.store(now + ms(cb.open_for), relaxed);
    e.probe_limit.store(at_least_one(cb.half_open_probes), relaxed);
    if (!e.breaker.compare_exchange_strong(from, breaker_state::open, std::memory_order_acq_rel,
                                           relaxed))
        return;
    // Probes still in flight from a failed half-open period report while open and release
    // nothing, so their slots are dropped here.
    e.probes_in_flight.store(0, relaxed);
    e.probe_successes.store(0, relaxed);
    e.breaker_failures.store(0, relaxed);
}

void report_to_breaker(endpoint_state& e, std::int64_t now, bool failed,
                       const config::circuit_breaker_config& cb) {
    switch (e.breaker.load(std::memory_order_acquire)) {
    case breaker_state::closed:
        if (failed) {
            if (e.breaker_failures.fetch_add(1, relaxed) + 1 >= at_least_one(cb.failures))
                open_breaker(e, now, cb, breaker_state::closed);
        } else if (e.breaker_failures.load(relaxed) != 0) {
            // Load first: most successes find zero, and a store would dirty the line.
            e.breaker_failures.store(0, relaxed);
        }
        return;
    case breaker_state::half_open:
        saturating_decrement(e.probes_in_flight);
        if (failed) {
            open_breaker(e, now, cb, breaker_state::half_open);
        } else if (e.probe_successes.fetch_add(1, relaxed) + 1 >= at_least_one(cb.successes)) {
            breaker_state from = breaker_state::half_open;
            if (e.breaker.compare_exchange_strong(from, breaker_state::closed,
                                                  std::memory_order_acq_rel, relaxed))
                e.breaker_failures.store(0, relaxed);
        }
        return;
    case breaker_state::open:
        // A request admitted before the breaker opened: it changes nothing now.
        return;
    }
}

void try_eject(endpoint_state& e, std::int64_t now, const config::outlier_config& od) {
    std::int64_t until = e.ejected_until.load(relaxed);
    if (until > now) return;  // already ejected; late failures do not extend it
    if (until != 0) e.sweep_ejection(now);

    upstream_state& owner = e.owner;
    const std::uint32_t cap = ejection_cap(owner.endpoint_count.load(relaxed), od.max_ejected_percent);
    std::uint32_t ejected = owner.ejected.load(relaxed);
    do {
        if (ejected >= cap) return;
    } while (!owner.ejected.compare_exchange_weak(ejected, ejected + 1, relaxed, relaxed));

    const std::uint32_t n = e.ejections.load(relaxed);
    const std::int64_t period =
        std::min(ms(od.base_ejection) * (static_cast<std::int64_t>(n) + 1), ms(od.max_ejection));
    std::int64_t expected = 0;
    if (!e.ejected_until.compare_exchange_strong(expected, now + period, relaxed, relaxed)) {
        // Another worker crossed the threshold at the same time and ejected it first.
        saturating_decrement(owner.ejected);
        return;
    }
    e.ejections.fetch_add(1, relaxed);
    e.ejection_decay_at.store(now + period + ms(od.base_ejection), relaxed);
    // Back from ejection, it needs a fresh streak of failures to be ejected again.
    e.consecutive_failures.store(0, relaxed);
}

void update_ewma(endpoint_state& e, std::int64_t now, std::chrono::microseconds latency) {
    // 0 means "no sample", so a sub-microsecond answer counts as 1 µs.
    const auto sample = static_cast<std::uint64_t>(std::max<std::int64_t>(latency.count(), 1));
    const std::uint64_t old = e.ewma_us.load(relaxed);
    std::uint64_t next = sample;
    if (old != 0 && sample < old) {
        // Peak EWMA: a slower sample is taken at once (react to trouble immediately); a
        // faster one pulls the average down in proportion to the time since the last one,
        // so a burst of fast answers in one millisecond cannot hide a slow endpoint.
        const auto stamp = static_cast<std::int64_t>(e.ewma_stamp_ms.load(relaxed));
        const double dt = static_cast<double>(std::max<std::int64_t>(now - stamp, 0));
        const double w = std::exp(-dt / endpoint_state::ewma_decay_ms);
        next = static_cast<std::uint64_t>(std::llround(static_cast<double>(old) * w +
                                                       static_cast<double>(sample) * (1 - w)));
        next = std::max<std::uint64_t>(next, 1);
    }
    // Two workers may interleave these stores; either pair of values is a real sample.
    e.ewma_us.store(next, relaxed);
    e.ewma_stamp_ms.store(static_cast<std::uint64_t>(std::max<std::int64_t>(now, 0)), relaxed);
}

}  // namespace

void endpoint_state::report(std::int64_t now, attempt_result result,
                            std::chrono::microseconds latency,
                            const config::circuit_breaker_config* cb,
                            const config::outlier_config* od) {
    std::int64_t until = ejected_until.load(relaxed);
    if (until != 0 && until <= now) sweep_ejection(now);

    const bool failed = result != attempt_result::success;
    if (cb != nullptr) report_to_breaker(*this, now, failed, *cb);

    if (!failed) {
        update_ewma(*this, now, latency);
        if (od == nullptr) return;
        if (consecutive_failures.load(relaxed) != 0) consecutive_failures.store(0, relaxed);
        // Decay: each base_ejection of good behaviour after an ejection ended takes one
        // ejection off the count, so the next period is shorter again.
        if (ejections.load(relaxed) != 0) {
            std::int64_t decay_at = ejection_decay_at.load(relaxed);
            if (now >= decay_at &&
                ejection_decay_at.compare_exchange_strong(decay_at, now + ms(od->base_ejection),
                                                          relaxed, relaxed))
                saturating_decrement(ejections);
        }
        return;
    }
    if (od == nullptr) return;
    if (consecutive_failures.fetch_add(1, relaxed) + 1 >= at_least_one(od->consecutive_failures))
        try_eject(*this, now, *od);
}

void endpoint_state::release(const config::circuit_breaker_config* cb) {
    if (cb != nullptr && breaker.load(std::memory_order_acquire) == breaker_state::half_open)
        saturating_decrement(probes_in_flight);
}

bool endpoint_state::record_check(bool ok, const config::health_check_config& hc) {
    constexpr auto max = std::numeric_limits<std::uint32_t>::max();
    if (ok) {
        check_failures = 0;
        if (check_successes < max) ++check_successes;
        if (!healthy.load(relaxed) && check_successes >= at_least_one(hc.healthy)) {
            healthy.store(true, relaxed);
            return true;
        }
    } else {
        check_successes = 0;
        if (check_failures < max) ++check_failures;
        if (healthy.load(relaxed) && check_failures >= at_least_one(hc.unhealthy)) {
            healthy.store(false, relaxed);
            return true;
        }
    }
    return false;
}

double endpoint_state::peak_ewma_cost(std::int64_t now) const {
    const auto load = static_cast<double>(std::max<std::int64_t>(in_flight.load(relaxed), 0));
    const std::uint64_t ewma = ewma_us.load(relaxed);
    if (ewma == 0) return load == 0 ? 0.0 : unmeasured_penalty * (load + 1);
    const auto stamp = static_cast<std::int64_t>(ewma_stamp_ms.load(relaxed));
    const double dt = static_cast<double>(std::max<std::int64_t>(now - stamp, 0));
    return static_cast<double>(ewma) * std::exp(-dt / ewma_decay_ms) * (load + 1);
}

bool upstream_state::try_begin_retry(const config::retry_budget_config& budget) {
    const std::int64_t share =
        static_cast<std::int64_t>(budget.percent) *
        std::max<std::int64_t>(in_flight.load(relaxed), 0) / 100;
    const std::int64_t allowed = std::max<std::int64_t>(budget.min_retries, share);
    std::int64_t cur = retries_in_flight.load(relaxed);
    do {
        if (cur >= allowed) return false;
    } while (!retries_in_flight.compare_exchange_weak(cur, cur + 1, relaxed, relaxed));
    return true;
}

}  // namespace sentinel::upstream
