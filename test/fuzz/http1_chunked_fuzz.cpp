// Fuzzes the chunked decoder. The first input bytes choose read sizes; the rest is the
// chunked body. Decoding all at once and in those splits must give the same data, the same
// final status and the same consumed count (split invariance), and data must be views.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/http1/chunked.hpp"

using namespace sentinel::http1;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

struct outcome {
    std::string body;
    chunked_decoder::status last = chunked_decoder::status::need_more;
    std::size_t consumed = 0;
};

// Offers bytes in pieces of the sizes in `splits` (cycled; 0 means "everything").
outcome decode(std::string_view in, std::string_view splits) {
    chunked_decoder dec(64, 256);  // small limits so the fuzzer reaches them
    outcome o;
    std::size_t offered = 0, pos = 0, k = 0;
    for (;;) {
        if (pos == offered) {
            if (offered == in.size()) return o;
            std::size_t step = splits.empty() ? 0 : static_cast<unsigned char>(splits[k++ % splits.size()]);
            if (step == 0) step = in.size();
            offered = std::min(in.size(), offered + step);
        }
        std::size_t consumed = 0;
        std::string_view out;
        const std::string_view window = in.substr(pos, offered - pos);
        o.last = dec.decode(window, consumed, out);
        check(consumed <= window.size());
        pos += consumed;
        o.consumed = pos;
        switch (o.last) {
            case chunked_decoder::status::data:
                check(!out.empty() && out.data() >= window.data() &&
                      out.data() + out.size() <= window.data() + consumed);
                o.body.append(out);
                break;
            case chunked_decoder::status::need_more:
                check(consumed == window.size());
                break;
            case chunked_decoder::status::done:
                check(dec.finished());
                return o;
            case chunked_decoder::status::error:
                return o;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t nsplits = std::min<std::size_t>(bytes[0] % 8, size - 1);
    const std::string_view splits(reinterpret_cast<const char*>(bytes) + 1, nsplits);
    const std::string_view in(reinterpret_cast<const char*>(bytes) + 1 + nsplits, size - 1 - nsplits);
    const auto whole = decode(in, {});
    const auto split = decode(in, splits);
    const auto bytewise = decode(in, "\x01");
    check(whole.last == split.last && whole.body == split.body && whole.consumed == split.consumed);
    check(whole.last == bytewise.last && whole.body == bytewise.body &&
          whole.consumed == bytewise.consumed);
    if (whole.last == chunked_decoder::status::done) {
        // What was accepted re-encodes to something that decodes to the same body.
        std::string wire;
        if (!whole.body.empty()) {
            append_chunk_header(wire, whole.body.size());
            wire += whole.body;
            append_chunk_end(wire);
        }
        append_last_chunk(wire);
        const auto again = decode(wire, {});
        check(again.last == chunked_decoder::status::done && again.body == whole.body);
    }
    return 0;
}
