// ticket_keys on its own: a key encrypts for one period and decrypts for two.
#include <gtest/gtest.h>

#include "tls/ticket_keys.hpp"

namespace sentinel::tls {
namespace {

using namespace std::chrono_literals;

TEST(TicketKeys, KeyIsAcceptedForTwoPeriodsAndRenewedInTheSecond) {
    ticket_keys keys(1h);
    const auto k0 = keys.current();
    ticket_keys::key found;
    EXPECT_EQ(keys.find(k0.name.data(), found), ticket_keys::match::current);
    EXPECT_EQ(found.aes, k0.aes);
    EXPECT_EQ(keys.current().name, k0.name);  // no rotation within the period

    keys.advance_clock_for_test(61min);
    const auto k1 = keys.current();
    EXPECT_NE(k1.name, k0.name);
    EXPECT_EQ(keys.find(k0.name.data(), found), ticket_keys::match::previous);
    EXPECT_EQ(found.hmac, k0.hmac);
    EXPECT_EQ(keys.find(k1.name.data(), found), ticket_keys::match::current);

    keys.advance_clock_for_test(61min);
    EXPECT_EQ(keys.find(k0.name.data(), found), ticket_keys::match::unknown);
    EXPECT_EQ(keys.find(k1.name.data(), found), ticket_keys::match::previous);
}

TEST(TicketKeys, AfterALongIdleStretchNoOldKeySurvives) {
    ticket_keys keys(1h);
    const auto k0 = keys.current();
    keys.advance_clock_for_test(3h);
    ticket_keys::key found;
    EXPECT_EQ(keys.find(k0.name.data(), found), ticket_keys::match::unknown);
}

TEST(TicketKeys, NewRotationPeriodAppliesToTheCurrentKey) {
    ticket_keys keys(12h);
    const auto k0 = keys.current();
    keys.set_rotation(1h);
    keys.advance_clock_for_test(61min);
    EXPECT_NE(keys.current().name, k0.name);
}

}  // namespace
}  // namespace sentinel::tls
