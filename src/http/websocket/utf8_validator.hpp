// Incremental UTF-8 validation (RFC 3629) for text messages that arrive in fragments and
// pieces: a character may straddle any two feeds. Rejects overlong forms, surrogates
// (U+D800-U+DFFF) and code points above U+10FFFF, and fails at the first byte that cannot
// continue a valid sequence (Autobahn's "fail fast" cases), not at the end of the message.
#pragma once

#include <cstdint>
#include <string_view>

namespace sentinel::websocket {

class utf8_validator {
public:
    // Consumes `data`; false once the bytes fed so far can no longer be valid UTF-8. Stays
    // false (further feeds are ignored) until reset().
    bool feed(std::string_view data);

    // True if everything fed is valid and does not end inside a character.
    bool complete() const { return !failed_ && pending_ == 0; }

    bool failed() const { return failed_; }
    void reset() { *this = utf8_validator{}; }

private:
    std::uint8_t pending_ = 0;  // continuation bytes still expected for the current character
    // Allowed range of the next continuation byte. Only the first one after a lead byte is
    // narrower than 0x80-0xBF; that is where overlongs, surrogates and > U+10FFFF are caught.
    std::uint8_t lo_ = 0x80;
    std::uint8_t hi_ = 0xBF;
    bool failed_ = false;
};

}  // namespace sentinel::websocket
