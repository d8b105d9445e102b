// Any input must parse or fail cleanly; a parsed document must print to text that parses again
// and prints identically (the canonical form is a fixed point), otherwise abort().
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/kdl/document.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace kdl = sentinel::kdl;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto first = kdl::parse(input);
    if (!first.doc) {
        if (!first.error) std::abort();
        (void)first.error->format("fuzz.kdl");
        return 0;
    }
    const std::string printed = kdl::print(*first.doc);
    const auto second = kdl::parse(printed);
    if (!second.doc) {
        std::fprintf(stderr, "printed output does not parse:\n%s\n%s\n", printed.c_str(),
                     second.error->format("printed.kdl").c_str());
        std::abort();
    }
    const std::string reprinted = kdl::print(*second.doc);
    if (reprinted != printed) {
        std::fprintf(stderr, "print is not a fixed point:\n--- first\n%s--- second\n%s",
                     printed.c_str(), reprinted.c_str());
        std::abort();
    }
    return 0;
}
