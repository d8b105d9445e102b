// byte_buffer: growth only after a read that filled it, shrink back between requests, and
// restart at a new (smaller) size once empty (upgraded connections).
#include <gtest/gtest.h>

#include <cstring>

#include "common/byte_buffer.hpp"

namespace sentinel {
namespace {

// Simulates a read of `n` bytes (at most the room offered); returns the bytes taken.
std::size_t read_into(byte_buffer& b, std::size_t n, char fill = 'x') {
    auto [data, room] = b.prepare();
    const std::size_t take = std::min(n, room);
    std::memset(data, fill, take);
    b.commit(take);
    return take;
}

TEST(ByteBuffer, GrowsOnlyAfterAFillingRead) {
    byte_buffer b(1024, 64 * 1024);
    EXPECT_EQ(read_into(b, 100), 100u);
    b.consume(100);
    EXPECT_EQ(read_into(b, 100), 100u);
    EXPECT_EQ(b.capacity(), 1024u);  // a short read: no growth
    b.consume(100);
    EXPECT_EQ(read_into(b, 5000), 1024u);  // filled the room offered
    b.consume(1024);
    read_into(b, 5000);
    EXPECT_EQ(b.capacity(), 4096u);  // ×4 on the next prepare
    b.consume(b.size());
    b.shrink();
    EXPECT_EQ(b.capacity(), 1024u);
}

TEST(ByteBuffer, RestartOnlyWhenEmpty) {
    byte_buffer b(8 * 1024, 64 * 1024);
    read_into(b, 300);
    EXPECT_FALSE(b.restart(512));  // bytes buffered: untouched
    EXPECT_EQ(b.capacity(), 8u * 1024);
    EXPECT_EQ(b.size(), 300u);
    b.consume(300);
    EXPECT_TRUE(b.restart(512));
    EXPECT_EQ(b.capacity(), 512u);
    EXPECT_EQ(b.max_capacity(), 64u * 1024);
    // It grows again from the new size, and shrinks back to it.
    EXPECT_EQ(read_into(b, 4096, 'a'), 512u);
    b.consume(512);
    read_into(b, 4096);
    EXPECT_EQ(b.capacity(), 2048u);
    b.consume(b.size());
    b.shrink();
    EXPECT_EQ(b.capacity(), 512u);
}

}  // namespace
}  // namespace sentinel
