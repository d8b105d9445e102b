// The shared agent state: the max-concurrent cap and the circuit breaker.
#include <gtest/gtest.h>

#include "agent/agent_state.hpp"

using sentinel::agent::agent_state;

TEST(AgentState, ConcurrencyCapIsExact) {
    agent_state s("a");
    EXPECT_TRUE(s.try_acquire(2));
    EXPECT_TRUE(s.try_acquire(2));
    EXPECT_FALSE(s.try_acquire(2));
    EXPECT_EQ(s.in_flight(), 2);
    s.release();
    EXPECT_TRUE(s.try_acquire(2));
}

TEST(AgentState, BreakerOpensAfterConsecutiveFailuresAndLetsOneTrial) {
    sentinel::config::agent_config cfg;
    cfg.breaker_failures = 3;
    cfg.breaker_open_for = std::chrono::milliseconds(1000);
    agent_state s("a");
    bool trial = false;
    s.report(false, false, 0, cfg);
    s.report(false, false, 0, cfg);
    s.report(true, false, 0, cfg);  // a success resets the count
    s.report(false, false, 0, cfg);
    s.report(false, false, 0, cfg);
    EXPECT_TRUE(s.breaker_allows(10, trial));
    s.report(false, false, 10, cfg);  // third in a row
    EXPECT_TRUE(s.breaker_open(500));
    EXPECT_FALSE(s.breaker_allows(500, trial));
    EXPECT_TRUE(s.breaker_allows(1010, trial));  // open period over: one trial
    EXPECT_TRUE(trial);
    bool second = false;
    EXPECT_FALSE(s.breaker_allows(1011, second));
    s.report(false, true, 1020, cfg);  // the trial failed: open again
    EXPECT_FALSE(s.breaker_allows(1500, trial));
    EXPECT_TRUE(s.breaker_allows(2021, trial));
    EXPECT_TRUE(trial);
    s.report(true, true, 2030, cfg);  // the trial succeeded: closed
    EXPECT_FALSE(s.breaker_open(2031));
    EXPECT_TRUE(s.breaker_allows(2031, trial));
    EXPECT_FALSE(trial);
}

TEST(AgentState, AnAbandonedTrialLetsTheNextRequestTry) {
    sentinel::config::agent_config cfg;
    cfg.breaker_failures = 1;
    cfg.breaker_open_for = std::chrono::milliseconds(100);
    agent_state s("a");
    bool trial = false;
    s.report(false, false, 0, cfg);  // open until 100
    EXPECT_TRUE(s.breaker_allows(150, trial));
    EXPECT_TRUE(trial);
    bool other = false;
    EXPECT_FALSE(s.breaker_allows(151, other));  // one trial at a time
    s.abandon_trial();                           // e.g. shed before reaching the agent
    EXPECT_TRUE(s.breaker_allows(152, trial));   // still half-open: the next request tries
    EXPECT_TRUE(trial);
    s.report(true, true, 160, cfg);
    EXPECT_FALSE(s.breaker_open(161));
}
