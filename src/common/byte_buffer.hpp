// A fixed-capacity byte buffer with a readable window [begin, end). Reads append at the end;
// parsers look at readable() and consume() what they used. Compaction (moving the readable
// bytes to the front) happens only in prepare(), so views into readable() stay valid until
// the next prepare().
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace sentinel {

class byte_buffer {
public:
    explicit byte_buffer(std::size_t capacity)
        : data_(new char[capacity]), capacity_(capacity) {}

    std::string_view readable() const { return {data_.get() + begin_, end_ - begin_}; }
    std::size_t size() const { return end_ - begin_; }
    bool empty() const { return begin_ == end_; }
    std::size_t capacity() const { return capacity_; }

    void consume(std::size_t n) {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }

    // Free space for the next read, compacting first if the tail is full. Invalidates views.
    std::pair<char*, std::size_t> prepare() {
        if (end_ == capacity_ && begin_ > 0) compact();
        return {data_.get() + end_, capacity_ - end_};
    }
    void commit(std::size_t n) { end_ += n; }
    bool full() const { return begin_ == 0 && end_ == capacity_; }

    void compact() {
        if (begin_ == 0) return;
        std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }

private:
    std::unique_ptr<char[]> data_;
    std::size_t capacity_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

}  // namespace sentinel
