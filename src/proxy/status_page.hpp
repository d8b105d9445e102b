// The built-in status page (`builtin "status"`): a small HTML summary of the process.
#pragma once

#include <string>

#include "proxy/worker_context.hpp"

namespace sentinel::proxy {

std::string render_status_page(const worker_context& worker, const snapshot& snap);

}  // namespace sentinel::proxy
