// Fuzzes the WebSocket frame codec the way the proxy uses it: the input (after two option
// bytes) is one direction's byte stream, parsed frame by frame both as client-to-server
// (masked) and as server-to-client (unmasked). Beyond "no crash", it checks:
//  * split invariance of parse_header: a prefix of a header is need_more or already the same
//    error, an error never turns back into need_more, and need_more never occurs with a full
//    14-byte header's worth of input;
//  * every accepted header obeys the rules it was parsed under, and re-encodes to the same
//    bytes (strict mode) or to a header that parses to the same fields (lenient mode);
//  * unmasking in random pieces with offsets equals a byte-wise reference, and append_frame /
//    append_close rebuild the exact frame from the unmasked payload;
//  * message_state agrees with a small reference model of §5.4 fragmentation, §5.5.1 close
//    and §8.1 UTF-8 (using an independent UTF-8 decoder), piece by piece;
//  * utf8_validator agrees with the independent decoder on the raw input, in any split.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "common/xoshiro.hpp"
#include "http/websocket/frame.hpp"
#include "http/websocket/message_state.hpp"
#include "http/websocket/utf8_validator.hpp"

using namespace sentinel::websocket;

namespace {

#define FUZZ_CHECK(cond)           \
    do {                           \
        if (!(cond)) std::abort(); \
    } while (0)

// --- independent UTF-8 reference ----------------------------------------------------------

enum class verdict { valid, truncated, invalid };

// Decodes s[pos..] by lead-byte length and value checks (overlong, surrogate, range); advances
// `pos` past every complete character. `truncated` if it ends inside a character that some
// continuation could still complete.
verdict utf8_scan(std::string_view s, std::size_t& pos) {
    static constexpr std::uint32_t min_value[] = {0, 0, 0x80, 0x800, 0x10000};
    while (pos < s.size()) {
        const auto c = static_cast<unsigned char>(s[pos]);
        const std::size_t len = c < 0x80               ? 1
                                : (c & 0xE0) == 0xC0   ? 2
                                : (c & 0xF0) == 0xE0   ? 3
                                : (c & 0xF8) == 0xF0   ? 4
                                                       : 0;
        if (len == 0) return verdict::invalid;
        std::uint32_t cp = c & (0xFF >> (len + (len > 1)));
        std::size_t have = 1;
        for (; have < len && pos + have < s.size(); ++have) {
            const auto d = static_cast<unsigned char>(s[pos + have]);
            if ((d & 0xC0) != 0x80) return verdict::invalid;
            cp = (cp << 6) | (d & 0x3F);
        }
        if (have < len) {
            // Smallest and largest values any completion can reach: a prefix is viable iff
            // that range meets [min_value, 0x10FFFF] minus the surrogates.
            const unsigned missing = static_cast<unsigned>(6 * (len - have));
            const std::uint32_t lo = cp << missing;
            const std::uint32_t hi = lo | ((1u << missing) - 1);
            const std::uint32_t from = lo < min_value[len] ? min_value[len] : lo;
            const std::uint32_t to = hi > 0x10FFFF ? 0x10FFFF : hi;
            if (from > to) return verdict::invalid;
            if (from >= 0xD800 && to <= 0xDFFF) return verdict::invalid;
            return verdict::truncated;
        }
        if (cp < min_value[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return verdict::invalid;
        pos += len;
    }
    return verdict::valid;
}

verdict utf8_reference(std::string_view s) {
    std::size_t pos = 0;
    return utf8_scan(s, pos);
}

// --- reference model of one direction ------------------------------------------------------

struct model {
    bool validate_utf8 = true;
    bool open = false;
    bool closed = false;
    bool check = false;  // the open message is uncompressed text
    std::string text;    // the open text message so far, when checked
    std::size_t text_pos = 0;

    error on_frame(const frame_header& h) {
        if (closed) return error::frame_after_close;
        if (is_control(h.opcode)) {
            if (h.opcode == op::close) closed = true;
            return error::none;
        }
        if (h.opcode == op::continuation) {
            if (!open) return error::unexpected_continuation;
        } else {
            if (open) return error::message_not_finished;
            open = true;
            check = validate_utf8 && h.opcode == op::text && !h.rsv1;
            text.clear();
            text_pos = 0;
        }
        return error::none;
    }

    // A payload piece of a data frame; `ends_message` if it completes a FIN frame.
    error on_data(std::string_view piece, bool ends_message) {
        error e = error::none;
        if (check) {
            text.append(piece);
            const verdict v = utf8_scan(text, text_pos);
            if (v == verdict::invalid || (ends_message && v != verdict::valid)) e = error::invalid_utf8;
        }
        if (ends_message) open = false;
        return e;
    }
};

struct options {
    header_options header;
    bool validate_utf8 = true;
    std::uint64_t max_payload = UINT64_MAX;
};

// Split invariance of parse_header over every prefix up to the header (or error) point.
void check_prefixes(std::string_view data, bool expect_masked, const options& o,
                    parse_status full, const frame_header& full_header, error full_err) {
    const std::size_t limit = data.size() < max_header_size ? data.size() : max_header_size;
    bool seen_error = false;
    for (std::size_t n = 0; n <= limit; ++n) {
        frame_header h;
        error e = error::none;
        const parse_status st = parse_header(data.substr(0, n), expect_masked, o.max_payload, h, e,
                                             o.header);
        if (full == parse_status::ok || (full == parse_status::error && full_err == error::too_large)) {
            if (n < full_header.header_size) {
                FUZZ_CHECK(st == parse_status::need_more);
            } else {
                FUZZ_CHECK(st == full);
                FUZZ_CHECK(h.header_size == full_header.header_size &&
                           h.payload_length == full_header.payload_length);
                if (st == parse_status::error) FUZZ_CHECK(e == full_err);
            }
        } else if (full == parse_status::error) {
            if (st == parse_status::error) {
                FUZZ_CHECK(e == full_err);
                seen_error = true;
            } else {
                FUZZ_CHECK(st == parse_status::need_more && !seen_error);
            }
        } else {
            FUZZ_CHECK(st == parse_status::need_more);
        }
    }
}

void check_header_rules(const frame_header& h, bool expect_masked, const options& o) {
    FUZZ_CHECK(h.masked == expect_masked);
    FUZZ_CHECK(!(h.opcode >= 3 && h.opcode <= 7) && h.opcode < 0xB);
    FUZZ_CHECK(!h.rsv2 && !h.rsv3);
    if (h.rsv1) FUZZ_CHECK(o.header.allow_rsv1 && !is_control(h.opcode) && h.opcode != op::continuation);
    if (is_control(h.opcode)) FUZZ_CHECK(h.fin && h.payload_length <= max_control_payload);
    FUZZ_CHECK((h.payload_length >> 63) == 0);
    const std::size_t ext = h.header_size - 2 - (h.masked ? 4 : 0);
    FUZZ_CHECK(ext == 0 || ext == 2 || ext == 8);
    if (ext == 0) FUZZ_CHECK(h.payload_length < 126);
    if (ext == 2) FUZZ_CHECK(h.payload_length <= 0xFFFF);
    if (!o.header.allow_non_minimal_length) {
        if (ext == 2) FUZZ_CHECK(h.payload_length >= 126);
        if (ext == 8) FUZZ_CHECK(h.payload_length > 0xFFFF);
    }
}

void check_reencoded_header(std::string_view original, const frame_header& h, const options& o) {
    std::string again;
    const std::size_t n = append_header(again, h);
    FUZZ_CHECK(n == again.size() && n <= h.header_size);
    if (!o.header.allow_non_minimal_length) {
        FUZZ_CHECK(again == original.substr(0, h.header_size));
        return;
    }
    frame_header r;
    error e = error::none;
    header_options strict = o.header;
    strict.allow_non_minimal_length = false;
    FUZZ_CHECK(parse_header(again, h.masked, UINT64_MAX, r, e, strict) == parse_status::ok);
    FUZZ_CHECK(r.fin == h.fin && r.rsv1 == h.rsv1 && r.opcode == h.opcode &&
               r.masked == h.masked && std::memcmp(r.mask, h.mask, 4) == 0 &&
               r.payload_length == h.payload_length && r.header_size == n);
}

void check_rebuilt_frame(std::string_view original, const frame_header& h,
                         std::string_view payload, const options& o) {
    const std::uint8_t* mask = h.masked ? h.mask : nullptr;
    std::string rebuilt;
    if (h.rsv1) {
        append_header(rebuilt, h);
        const std::size_t at = rebuilt.size();
        rebuilt.append(payload);
        if (mask) unmask(rebuilt.data() + at, payload.size(), mask);
    } else {
        append_frame(rebuilt, h.fin, h.opcode, payload, mask);
    }
    const std::string_view wire = original.substr(0, h.header_size + h.payload_length);
    if (!o.header.allow_non_minimal_length) FUZZ_CHECK(rebuilt == wire);
    FUZZ_CHECK(rebuilt.substr(rebuilt.size() - payload.size()) == wire.substr(h.header_size));

    if (h.opcode != op::close) return;
    std::uint16_t code = 0;
    std::string_view reason;
    if (!parse_close_payload(payload, code, reason)) return;
    FUZZ_CHECK(code == 1005 ? payload.empty() : is_valid_close_code(code));
    FUZZ_CHECK(utf8_reference(reason) == verdict::valid);
    std::string close;
    append_close(close, code == 1005 ? 0 : code, reason, mask);
    if (!o.header.allow_non_minimal_length) FUZZ_CHECK(close == wire);
}

void run_direction(std::string_view stream, bool expect_masked, const options& o,
                   std::uint64_t seed) {
    sentinel::xoshiro256ss rng(seed);
    message_state state(o.validate_utf8);
    model ref;
    ref.validate_utf8 = o.validate_utf8;
    std::string payload;
    while (true) {
        frame_header h;
        error err = error::none;
        const parse_status st = parse_header(stream, expect_masked, o.max_payload, h, err, o.header);
        check_prefixes(stream, expect_masked, o, st, h, err);
        if (st == parse_status::need_more) {
            FUZZ_CHECK(stream.size() < max_header_size);
            return;
        }
        const bool too_large = st == parse_status::error && err == error::too_large;
        if (st == parse_status::error && !too_large) {
            FUZZ_CHECK(err != error::none && !description(err).empty());
            FUZZ_CHECK(close_code_for(err) == 1002);
            return;
        }
        check_header_rules(h, expect_masked, o);
        if (too_large) FUZZ_CHECK(h.payload_length > o.max_payload);
        else FUZZ_CHECK(h.payload_length <= o.max_payload);
        check_reencoded_header(stream, h, o);

        // A frame with an empty payload also ends in on_frame, message checks included.
        error want_start = ref.on_frame(h);
        if (want_start == error::none && h.payload_length == 0 && !is_control(h.opcode))
            want_start = ref.on_data({}, h.fin);
        const error got_start = state.on_frame(h);
        FUZZ_CHECK(got_start == want_start);
        if (got_start != error::none) return;
        if (h.payload_length == 0 && h.opcode == op::close) FUZZ_CHECK(state.close_code() == 1005);

        const std::string_view body = stream.substr(h.header_size);
        const bool complete = body.size() >= h.payload_length;
        const std::size_t available =
            complete ? static_cast<std::size_t>(h.payload_length) : body.size();
        if (too_large) {
            // Relayed uninspected: the tracker only counts the bytes.
            if (h.payload_length > 0) {
                FUZZ_CHECK(state.skip_payload(available) == error::none);
                if (!is_control(h.opcode)) ref.check = false;
                if (complete && h.fin && !is_control(h.opcode)) ref.open = false;
            }
            if (!complete) return;
            FUZZ_CHECK(!state.in_frame());
            stream.remove_prefix(h.header_size + available);
            continue;
        }

        // Unmask a copy in random pieces, checking each against the byte-wise definition.
        payload.assign(body.substr(0, available));
        std::size_t pos = 0;
        while (pos < payload.size()) {
            const std::size_t n = std::min<std::size_t>(payload.size() - pos, 1 + rng.below(40));
            if (h.masked) unmask(payload.data() + pos, n, h.mask, pos);
            for (std::size_t i = pos; i < pos + n; ++i)
                FUZZ_CHECK(payload[i] == static_cast<char>(body[i] ^ (h.masked ? h.mask[i % 4] : 0)));
            pos += n;
        }

        // Feed the tracker in different random pieces, comparing with the model each time.
        pos = 0;
        error got = error::none;
        error want = error::none;
        while (pos < payload.size() && got == error::none) {
            const std::size_t n = std::min<std::size_t>(payload.size() - pos, 1 + rng.below(64));
            const std::string_view piece(payload.data() + pos, n);
            pos += n;
            const bool ends_frame = pos == h.payload_length;
            got = state.on_payload(piece);
            if (!is_control(h.opcode)) want = ref.on_data(piece, ends_frame && h.fin);
            if (h.opcode == op::close && ends_frame) {
                std::uint16_t code = 0;
                std::string_view reason;
                want = parse_close_payload(payload, code, reason) ? error::none
                                                                  : error::bad_close_payload;
                if (want == error::none) {
                    FUZZ_CHECK(state.close_code() == code && state.close_reason() == reason);
                }
            }
            FUZZ_CHECK(got == want);
        }
        if (got != error::none) return;
        FUZZ_CHECK(state.in_message() == ref.open);
        FUZZ_CHECK(state.closed() == ref.closed);
        if (!complete) {
            FUZZ_CHECK(state.in_frame());
            return;
        }
        FUZZ_CHECK(!state.in_frame());
        check_rebuilt_frame(stream, h, payload, o);
        stream.remove_prefix(h.header_size + available);
    }
}

void check_utf8(std::string_view data, std::uint64_t seed) {
    const verdict want = utf8_reference(data);
    utf8_validator whole;
    const bool ok = whole.feed(data);
    FUZZ_CHECK((ok ? (whole.complete() ? verdict::valid : verdict::truncated) : verdict::invalid) == want);
    sentinel::xoshiro256ss rng(seed);
    utf8_validator pieces;
    bool fed_ok = true;
    std::size_t pos = 0;
    while (pos < data.size()) {
        const std::size_t n = std::min<std::size_t>(data.size() - pos, rng.below(9));
        const bool r = pieces.feed(data.substr(pos, n));
        FUZZ_CHECK(!r || fed_ok);  // failure is sticky
        fed_ok = r;
        pos += n;
    }
    FUZZ_CHECK(fed_ok == ok && pieces.complete() == whole.complete());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    static constexpr std::uint64_t limits[] = {UINT64_MAX, 0, 1, 125, 126, 1000, 65535, 65536};
    options o;
    o.header.allow_rsv1 = (data[0] & 0x01) != 0;
    o.header.allow_non_minimal_length = (data[0] & 0x02) != 0;
    o.validate_utf8 = (data[0] & 0x04) == 0;
    o.max_payload = limits[(data[0] >> 3) & 7];
    const std::uint64_t seed = data[1];
    const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
    run_direction(stream, true, o, seed);
    run_direction(stream, false, o, seed);
    check_utf8(stream, seed);
    return 0;
}
