#include "runtime/deadline_wheel.hpp"

namespace sentinel::runtime {

deadline_wheel::deadline_wheel(std::chrono::milliseconds resolution, std::size_t slots,
                               clock::time_point epoch)
    : resolution_(resolution), epoch_(epoch), slots_(slots, nullptr) {}

deadline_wheel::~deadline_wheel() {
    // Entries that outlive the wheel must not point at it.
    for (auto*& head : slots_)
        while (head != nullptr) unlink(*head);
}

std::uint64_t deadline_wheel::tick_of(clock::time_point t) const {
    if (t <= epoch_) return 0;
    return static_cast<std::uint64_t>((t - epoch_) / resolution_);
}

void deadline_wheel::unlink(entry& e) {
    if (e.prev_ != nullptr) {
        e.prev_->next_ = e.next_;
    } else {
        slots_[e.tick_ % slots_.size()] = e.next_;
    }
    if (e.next_ != nullptr) e.next_->prev_ = e.prev_;
    e.prev_ = e.next_ = nullptr;
    e.wheel_ = nullptr;
    --size_;
}

void deadline_wheel::schedule(entry& e, clock::time_point deadline) {
    if (e.wheel_ != nullptr) unlink(e);
    // The tick whose end is past the deadline; never one already processed.
    e.tick_ = std::max(tick_of(deadline) + 1, done_tick_ + 1);
    entry*& head = slots_[e.tick_ % slots_.size()];
    e.prev_ = nullptr;
    e.next_ = head;
    if (head != nullptr) head->prev_ = &e;
    head = &e;
    e.wheel_ = this;
    ++size_;
}

void deadline_wheel::cancel(entry& e) {
    if (e.wheel_ != nullptr) unlink(e);
    e.tick_ = 0;
}

void deadline_wheel::advance(clock::time_point now) {
    const std::uint64_t now_tick = tick_of(now);
    if (now_tick <= done_tick_) return;
    // Behind by more than a revolution: every slot is visited once.
    const std::uint64_t first =
        now_tick - done_tick_ > slots_.size() ? now_tick - slots_.size() + 1 : done_tick_ + 1;
    // Expired entries are unlinked first and expired afterwards, so expire() may schedule or
    // cancel any entry without disturbing this walk; one rescheduled or cancelled meanwhile
    // is skipped. (expire() must not destroy other entries: connections only cancel I/O.)
    expiring_.clear();
    for (std::uint64_t t = first; t <= now_tick && size_ > 0; ++t) {
        for (entry* e = slots_[t % slots_.size()]; e != nullptr;) {
            entry* next = e->next_;
            if (e->tick_ <= now_tick) {
                unlink(*e);
                e->tick_ = pending_expiry;
                expiring_.push_back(e);
            }
            e = next;
        }
    }
    done_tick_ = now_tick;
    for (entry* e : expiring_) {
        if (e->tick_ != pending_expiry) continue;
        e->tick_ = 0;
        e->expire();
    }
    expiring_.clear();
}

}  // namespace sentinel::runtime
