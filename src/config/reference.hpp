// The configuration reference (docs/config-reference.md), rendered from the schema table.
#pragma once

#include <string>

namespace sentinel::config {

// The whole Markdown document. Deterministic: the committed file must equal this output
// (CTest `docs.config_reference_fresh`).
std::string config_reference_markdown();

}  // namespace sentinel::config
