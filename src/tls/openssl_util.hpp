// Small OpenSSL helpers shared by the server and client contexts (internal to src/tls).
#pragma once

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tls/tls_context.hpp"

namespace sentinel::tls::detail {

struct ssl_ctx_free {
    void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct x509_free {
    void operator()(X509* p) const { X509_free(p); }
};
struct bio_free {
    void operator()(BIO* p) const { BIO_free(p); }
};
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;

// The reason of the oldest queued OpenSSL error (the root cause; the later ones are usually
// "called from"), or `fallback` when the queue is empty. Clears the queue either way, so a
// stale error never shows up in an unrelated message.
std::string openssl_error(std::string_view fallback = "unknown error");

// Records `path` and its modification time in `files`; false (with `error`) when it cannot
// be read.
bool stamp_file(const std::string& path, std::vector<file_stamp>& files, std::string& error);

// Every certificate in a PEM file, leaf first. Empty (with `error`) when none can be read.
std::vector<x509_ptr> read_pem_certificates(const std::string& path, std::string& error);

// The names a certificate is for: its SAN DNS names (lowercase), plus its SAN IP addresses
// when `with_ips`; the subject CN only when there is no SAN name at all (RFC 6125).
std::vector<std::string> certificate_names(X509* cert, bool with_ips);

std::string lowercase(std::string_view s);

// Password callback that refuses: an encrypted key is a load error, never a terminal prompt.
int refuse_password(char* buf, int size, int rwflag, void* userdata);

}  // namespace sentinel::tls::detail
