// Prints docs/config-reference.md: `config_docgen > docs/config-reference.md`.
#include <iostream>

#include "config/reference.hpp"

int main() {
    std::cout << sentinel::config::config_reference_markdown();
    return std::cout.good() ? 0 : 1;
}
