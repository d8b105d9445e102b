// Chunked transfer coding (RFC 9112 §7.1). The decoder is a byte-at-a-time state machine for
// the framing bytes and hands chunk data out as views, so the result cannot depend on how the
// input was split across reads — the property the split-invariance tests and fuzzer check.
#include "http/http1/chunked.hpp"

#include <charconv>
#include <limits>

#include "http/http1/chars.hpp"

namespace sentinel::http1 {
namespace {

using namespace detail;

// Same bound as Content-Length: sizes must fit a signed 64-bit offset.
constexpr std::uint64_t max_chunk_size = std::numeric_limits<std::int64_t>::max();

// Positions inside a chunk extension: *( ";" token [ "=" ( token / quoted-string ) ] ).
// BWS around ';' and '=' is refused: senders must not generate it (RFC 9110 §5.6.3) and
// lenient whitespace handling in chunk lines is a known request-smuggling differential.
enum ext : std::uint8_t { ext_name_start, ext_name, ext_value_start, ext_token, ext_quoted,
                          ext_quoted_pair, ext_after_quote };
// Positions inside a trailer field line.
enum trailer_pos : std::uint8_t { tr_line_start, tr_name, tr_value };

}  // namespace

void chunked_decoder::reset() {
    state_ = state::size;
    remaining_ = 0;
    line_bytes_ = 0;
    trailer_bytes_ = 0;
    size_digits_ = false;
    in_ext_quote_ = false;
    trailer_line_empty_ = true;
    sub_state_ = 0;
}

bool chunked_decoder::finished() const { return state_ == state::done; }

chunked_decoder::status chunked_decoder::decode(std::string_view in, std::size_t& consumed,
                                                std::string_view& out) {
    out = {};
    consumed = 0;
    if (state_ == state::done) return status::done;
    if (state_ == state::failed) return status::error;

    std::size_t i = 0;
    const auto fail = [&] {
        state_ = state::failed;
        consumed = i;
        return status::error;
    };
    while (i < in.size()) {
        const char c = in[i];
        switch (state_) {
            case state::size: {
                if (++line_bytes_ > max_line_) return fail();
                const int d = hex_value(c);
                if (d >= 0) {
                    if (remaining_ > (max_chunk_size - static_cast<unsigned>(d)) / 16)
                        return fail();
                    remaining_ = remaining_ * 16 + static_cast<unsigned>(d);
                    size_digits_ = true;
                } else if (!size_digits_) {
                    return fail();
                } else if (c == '\r') {
                    state_ = state::size_lf;
                } else if (c == ';') {
                    state_ = state::size_ext;
                    sub_state_ = ext_name_start;
                } else {
                    return fail();
                }
                break;
            }
            case state::size_ext: {
                if (++line_bytes_ > max_line_) return fail();
                switch (sub_state_) {
                    case ext_name_start:
                        if (!is_tchar(c)) return fail();
                        sub_state_ = ext_name;
                        break;
                    case ext_name:
                    case ext_token:
                        if (is_tchar(c)) break;
                        if (c == ';') sub_state_ = ext_name_start;
                        else if (c == '=' && sub_state_ == ext_name) sub_state_ = ext_value_start;
                        else if (c == '\r') state_ = state::size_lf;
                        else return fail();
                        break;
                    case ext_value_start:
                        if (is_tchar(c)) {
                            sub_state_ = ext_token;
                        } else if (c == '"') {
                            sub_state_ = ext_quoted;
                            in_ext_quote_ = true;
                        } else {
                            return fail();
                        }
                        break;
                    case ext_quoted:
                        if (c == '"') {
                            sub_state_ = ext_after_quote;
                            in_ext_quote_ = false;
                        } else if (c == '\\') {
                            sub_state_ = ext_quoted_pair;
                        } else if (!is(c, cc_qdtext)) {
                            return fail();
                        }
                        break;
                    case ext_quoted_pair:
                        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                        if (!is(c, cc_field)) return fail();
                        sub_state_ = ext_quoted;
                        break;
                    case ext_after_quote:
                        if (c == ';') sub_state_ = ext_name_start;
                        else if (c == '\r') state_ = state::size_lf;
                        else return fail();
                        break;
                    default:
                        return fail();
                }
                break;
            }
            case state::size_lf:
                if (c != '\n') return fail();
                line_bytes_ = 0;
                size_digits_ = false;
                if (remaining_ == 0) {
                    state_ = state::trailer;
                    trailer_line_empty_ = true;
                    sub_state_ = tr_line_start;
                } else {
                    state_ = state::data;
                }
                break;
            case state::data: {
                const std::size_t avail = in.size() - i;
                const std::size_t n =
                    remaining_ < avail ? static_cast<std::size_t>(remaining_) : avail;
                out = in.substr(i, n);
                remaining_ -= n;
                if (remaining_ == 0) state_ = state::data_cr;
                consumed = i + n;
                return status::data;
            }
            case state::data_cr:
                if (c != '\r') return fail();
                state_ = state::data_lf;
                break;
            case state::data_lf:
                if (c != '\n') return fail();
                state_ = state::size;
                break;
            case state::trailer: {
                // Trailers are validated like header fields and dropped: forwarding them
                // would need a merge policy, and nothing downstream consumes them yet.
                if (++trailer_bytes_ > max_trailer_bytes_ || ++line_bytes_ > max_line_)
                    return fail();
                if (c == '\r') {
                    if (sub_state_ == tr_name) return fail();  // name without ':'
                    state_ = state::trailer_lf;
                    break;
                }
                trailer_line_empty_ = false;
                switch (sub_state_) {
                    case tr_line_start:
                        if (!is_tchar(c)) return fail();  // also obs-fold and bare LF
                        sub_state_ = tr_name;
                        break;
                    case tr_name:
                        if (c == ':') sub_state_ = tr_value;
                        else if (!is_tchar(c)) return fail();
                        break;
                    default:
                        if (!is(c, cc_field)) return fail();
                        break;
                }
                break;
            }
            case state::trailer_lf:
                if (c != '\n') return fail();
                if (++trailer_bytes_ > max_trailer_bytes_) return fail();
                if (trailer_line_empty_) {
                    state_ = state::done;
                    consumed = i + 1;
                    return status::done;
                }
                state_ = state::trailer;
                trailer_line_empty_ = true;
                line_bytes_ = 0;
                sub_state_ = tr_line_start;
                break;
            case state::done:
            case state::failed:
                return fail();  // unreachable: handled before the loop
        }
        ++i;
    }
    consumed = in.size();
    return status::need_more;
}

void append_chunk_header(std::string& out, std::size_t size) {
    char buf[2 * sizeof(std::size_t)];
    const auto r = std::to_chars(buf, buf + sizeof(buf), size, 16);
    out.append(buf, r.ptr);
    out.append("\r\n", 2);
}

void append_chunk_end(std::string& out) { out.append("\r\n", 2); }

void append_last_chunk(std::string& out) { out.append("0\r\n\r\n", 5); }

}  // namespace sentinel::http1
