#include "runtime/deadline_wheel.hpp"

#include <functional>
#include <memory>

#include <gtest/gtest.h>

namespace sentinel::runtime {
namespace {

using namespace std::chrono_literals;
using clock = deadline_wheel::clock;

struct probe : deadline_wheel::entry {
    int fired = 0;
    std::function<void()> on_expire;
    void expire() override {
        ++fired;
        if (on_expire) on_expire();
    }
};

const clock::time_point t0{};

TEST(DeadlineWheel, FiresOnlyOncePassed) {
    deadline_wheel wheel(10ms, 64, t0);
    probe p;
    wheel.schedule(p, t0 + 100ms);
    wheel.advance(t0 + 99ms);
    EXPECT_EQ(p.fired, 0);
    wheel.advance(t0 + 111ms);
    EXPECT_EQ(p.fired, 1);
    EXPECT_FALSE(p.scheduled());
    wheel.advance(t0 + 500ms);
    EXPECT_EQ(p.fired, 1);
}

TEST(DeadlineWheel, NeverFiresEarlyAndAtMostOneTickLate) {
    for (int ms = 1; ms < 300; ms += 7) {
        deadline_wheel wheel(10ms, 16, t0);
        probe p;
        const auto deadline = t0 + std::chrono::milliseconds(ms);
        wheel.schedule(p, deadline);
        auto now = t0;
        while (p.fired == 0) {
            now += 1ms;
            wheel.advance(now);
        }
        EXPECT_GE(now, deadline) << ms;
        EXPECT_LE(now, deadline + 20ms) << ms;
    }
}

TEST(DeadlineWheel, RescheduleMovesTheDeadline) {
    deadline_wheel wheel(10ms, 64, t0);
    probe p;
    wheel.schedule(p, t0 + 50ms);
    wheel.schedule(p, t0 + 2s);  // later
    wheel.advance(t0 + 1s);
    EXPECT_EQ(p.fired, 0);
    wheel.schedule(p, t0 + 1100ms);  // earlier than the last one
    wheel.advance(t0 + 1200ms);
    EXPECT_EQ(p.fired, 1);
    EXPECT_EQ(wheel.size(), 0u);
}

TEST(DeadlineWheel, BeyondOneRevolution) {
    deadline_wheel wheel(10ms, 8, t0);  // one revolution = 80 ms
    probe p;
    wheel.schedule(p, t0 + 1s);
    for (auto now = t0; now < t0 + 990ms; now += 5ms) wheel.advance(now);
    EXPECT_EQ(p.fired, 0);
    wheel.advance(t0 + 1020ms);
    EXPECT_EQ(p.fired, 1);
}

TEST(DeadlineWheel, CancelAndRescheduleFromExpire) {
    deadline_wheel wheel(10ms, 64, t0);
    probe a, b, c;
    wheel.schedule(a, t0 + 20ms);
    wheel.schedule(b, t0 + 20ms);
    wheel.schedule(c, t0 + 20ms);
    // Whichever fires first cancels the others' expiry by moving or cancelling them.
    a.on_expire = [&] { wheel.schedule(b, t0 + 1s); wheel.cancel(c); };
    b.on_expire = [&] { wheel.schedule(a, t0 + 1s); wheel.cancel(c); };
    c.on_expire = [&] { wheel.schedule(a, t0 + 1s); wheel.schedule(b, t0 + 1s); };
    wheel.advance(t0 + 50ms);
    EXPECT_EQ(a.fired + b.fired + c.fired, 1);
    EXPECT_EQ(wheel.size(), c.fired ? 2u : 1u);
}

TEST(DeadlineWheel, EntryAndWheelMayDieInEitherOrder) {
    auto wheel = std::make_unique<deadline_wheel>(10ms, 16, t0);
    {
        probe gone;
        wheel->schedule(gone, t0 + 1s);
    }  // destroyed while scheduled: unlinked
    EXPECT_EQ(wheel->size(), 0u);
    probe outlives;
    wheel->schedule(outlives, t0 + 1s);
    wheel.reset();  // the wheel goes first
    EXPECT_FALSE(outlives.scheduled());
}

TEST(DeadlineWheel, ManyEntriesLongGap) {
    deadline_wheel wheel(10ms, 32, t0);
    std::vector<probe> probes(1000);
    for (std::size_t i = 0; i < probes.size(); ++i)
        wheel.schedule(probes[i], t0 + std::chrono::milliseconds(i * 3));
    wheel.advance(t0 + 10s);  // far behind: every slot visited once
    for (const auto& p : probes) EXPECT_EQ(p.fired, 1);
    EXPECT_EQ(wheel.size(), 0u);
}

}  // namespace
}  // namespace sentinel::runtime
