#include "http/websocket/utf8_validator.hpp"

#include <cstring>

namespace sentinel::websocket {

bool utf8_validator::feed(std::string_view data) {
    if (failed_) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    const std::size_t n = data.size();
    std::size_t i = 0;
    while (i < n) {
        if (pending_ == 0) {
            // Text is mostly ASCII: skip it a word at a time.
            while (i + 8 <= n) {
                std::uint64_t w;
                std::memcpy(&w, p + i, 8);
                if ((w & 0x8080808080808080ULL) != 0) break;
                i += 8;
            }
            while (i < n && p[i] < 0x80) ++i;
            if (i == n) break;
            const unsigned char c = p[i++];
            lo_ = 0x80;
            hi_ = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                pending_ = 1;
            } else if (c >= 0xE0 && c <= 0xEF) {
                pending_ = 2;
                if (c == 0xE0) lo_ = 0xA0;       // overlong 3-byte form
                else if (c == 0xED) hi_ = 0x9F;  // UTF-16 surrogates
            } else if (c >= 0xF0 && c <= 0xF4) {
                pending_ = 3;
                if (c == 0xF0) lo_ = 0x90;       // overlong 4-byte form
                else if (c == 0xF4) hi_ = 0x8F;  // above U+10FFFF
            } else {
                // 0x80-0xC1 (stray continuation, overlong 2-byte lead) or 0xF5-0xFF.
                failed_ = true;
                return false;
            }
            continue;
        }
        const unsigned char c = p[i++];
        if (c < lo_ || c > hi_) {
            failed_ = true;
            return false;
        }
        lo_ = 0x80;
        hi_ = 0xBF;
        --pending_;
    }
    return true;
}

}  // namespace sentinel::websocket
