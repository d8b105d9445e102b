// Load-time checks of TLS material, so a bad certificate is a config error with a position
// instead of a failed handshake at 3 AM: the chain parses, the key matches the leaf, and the
// leaf is valid now.
#pragma once

#include <optional>
#include <string>

namespace sentinel::config {

// Null when usable; otherwise what is wrong ("key does not match the certificate", ...).
std::optional<std::string> check_certificate_pair(const std::string& certificate_path,
                                                  const std::string& key_path);

// Null when the file holds at least one PEM certificate (a CA bundle).
std::optional<std::string> check_ca_bundle(const std::string& path);

}  // namespace sentinel::config
