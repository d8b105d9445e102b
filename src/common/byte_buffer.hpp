// A bounded byte buffer with a readable window [begin, end). Reads append at the end;
// parsers look at readable() and consume() what they used. Compaction (moving the readable
// bytes to the front) and growth happen only in prepare(), so views into readable() stay
// valid until the next prepare().
//
// It starts small and grows (×4, up to `max_capacity`) only when a read filled all the room
// it was offered — more data was likely waiting — or a head needs more room; shrink() gives
// the memory back between requests. An idle keep-alive connection costs the initial size,
// a busy transfer reads in large blocks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace sentinel {

class byte_buffer {
public:
    explicit byte_buffer(std::size_t capacity, std::size_t max_capacity = 0)
        : data_(new char[capacity]), capacity_(capacity), initial_(capacity),
          max_(std::max(capacity, max_capacity)) {}

    std::string_view readable() const { return {data_.get() + begin_, end_ - begin_}; }
    std::size_t size() const { return end_ - begin_; }
    bool empty() const { return begin_ == end_; }
    std::size_t capacity() const { return capacity_; }
    std::size_t max_capacity() const { return max_; }

    void consume(std::size_t n) {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }

    // Free space for the next read: grows after a read that filled the buffer, else compacts
    // when the tail is full. Invalidates views.
    std::pair<char*, std::size_t> prepare() {
        if ((filled_ || end_ - begin_ == capacity_) && capacity_ < max_) {
            resize(std::min(capacity_ * 4, max_));
        } else if (end_ == capacity_ && begin_ > 0) {
            compact();
        }
        filled_ = false;
        return {data_.get() + end_, capacity_ - end_};
    }
    void commit(std::size_t n) {
        end_ += n;
        filled_ = n > 0 && end_ == capacity_;
    }
    bool full() const { return begin_ == 0 && end_ == capacity_ && capacity_ == max_; }

    // Back to the initial size when nothing is buffered (between requests).
    void shrink() {
        if (capacity_ != initial_ && begin_ == end_) {
            data_.reset(new char[initial_]);
            capacity_ = initial_;
            begin_ = end_ = 0;
        }
    }

    // Restarts the buffer at `capacity` bytes (kept as the new initial size) when nothing is
    // buffered: for a connection whose traffic changes shape (an upgraded one). False, and
    // nothing changed, when bytes are buffered.
    bool restart(std::size_t capacity) {
        if (begin_ != end_) return false;
        data_.reset(new char[capacity]);
        capacity_ = initial_ = capacity;
        max_ = std::max(max_, capacity);
        begin_ = end_ = 0;
        filled_ = false;
        return true;
    }

    void compact() {
        if (begin_ == 0) return;
        std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }

private:
    void resize(std::size_t capacity) {
        std::unique_ptr<char[]> bigger(new char[capacity]);
        std::memcpy(bigger.get(), data_.get() + begin_, end_ - begin_);
        data_ = std::move(bigger);
        end_ -= begin_;
        begin_ = 0;
        capacity_ = capacity;
    }

    std::unique_ptr<char[]> data_;
    std::size_t capacity_;
    std::size_t initial_;
    std::size_t max_;
    bool filled_ = false;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

}  // namespace sentinel
