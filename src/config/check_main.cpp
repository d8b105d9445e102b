// `config_check FILE...`: loads each file with the real loader and prints every diagnostic.
// Exit status 0 only when every file is valid. Used by CTest to validate examples/.
#include <iostream>

#include "config/loader.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: config_check FILE...\n";
        return 2;
    }
    int status = 0;
    for (int i = 1; i < argc; ++i) {
        auto r = sentinel::config::load_file(argv[i]);
        for (const auto& d : r.errors) std::cerr << d.format() << "\n";
        if (!r.ok()) {
            std::cerr << argv[i] << ": " << r.errors.size() << " error(s)\n";
            status = 1;
        } else {
            std::cout << argv[i] << ": ok (hash " << r.cfg->hash << ", " << r.cfg->files.size()
                      << " file(s))\n";
        }
    }
    return status;
}
