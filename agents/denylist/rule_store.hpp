// The active denylist, shared by the handlers of every connection, and (re)loading it from
// its file. A reload that fails keeps the list that is active: a typo in an edit must not
// open the door that the previous list kept shut.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agents/denylist/denylist_rules.hpp"

namespace sentinel::denylist {

class rule_store {
public:
    explicit rule_store(std::string path);

    const std::string& path() const noexcept { return path_; }

    // Thread-safe; never null (an empty list until the first load).
    std::shared_ptr<const rule_set> current() const;
    void replace(std::shared_ptr<const rule_set> rules);

    // Reads and parses the file. Success makes it the active list; failure keeps the active one
    // and returns the problems as "FILE:LINE:COL: message" lines (or "FILE: reason").
    bool load(std::vector<std::string>& errors);

    // True when the file looks different (inode, size, modification time) from when load() last
    // read it, successfully or not, so one bad edit is reported once rather than every poll.
    bool changed() const;

private:
    struct signature {
        bool exists = false;
        dev_t dev = 0;
        ino_t ino = 0;
        off_t size = 0;
        std::int64_t mtime_ns = 0;
        bool operator==(const signature&) const = default;
    };
    signature stat_file() const;

    std::string path_;
    mutable std::mutex mutex_;
    std::shared_ptr<const rule_set> rules_;
    signature tried_;  // of the last load() attempt; used by the I/O thread only
};

}  // namespace sentinel::denylist
