// TLS contexts built from config, off the workers, and shared read-only by every worker
// through the snapshot (OpenSSL's SSL_CTX is safe to use from several threads once set up).
//
// server_context: a `protocol "https"` listener. One SSL_CTX per certificate name set (RSA
// and ECDSA certificates for the same names share one, and the client's signature
// algorithms pick), chosen by SNI (exact name, then wildcard, else the first certificate);
// ALPN; session tickets whose keys rotate; a bounded session cache; client certificates;
// OCSP stapling.
//
// client_context: TLS towards an upstream: verification (system or configured CA, name or
// IP checked against the certificate), SNI, ALPN, client certificate, and session reuse per
// endpoint so pooled reconnects resume instead of doing full handshakes.
//
// Lifetime: the OpenSSL callbacks (SNI, ALPN, tickets, OCSP, new-session) find the context
// through the SSL_CTX, so an SSL made from a context must not outlive that context: a
// connection keeps the context's shared_ptr (or the snapshot holding it) for its lifetime.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/model/config.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

namespace sentinel::tls {

// Files a context was built from and their modification times: the server rebuilds the
// snapshot when one changes (certificate renewal without a reload).
struct file_stamp {
    std::string path;
    std::int64_t mtime_ns = 0;
};
bool files_changed(const std::vector<file_stamp>& files);

class ticket_keys;  // rotating session-ticket keys, carried over across rebuilds

class server_context {
public:
    // `previous`: the same listener's context from the previous snapshot, or null; its
    // ticket keys are kept so resumption survives reloads. `offer_h2`: ALPN selects h2 when
    // the client offers it. Null + `error` on failure.
    static std::shared_ptr<server_context> build(const config::listener_tls_config& cfg, bool offer_h2,
                                                 const server_context* previous, std::string& error);
    ~server_context();

    // The context new connections start with (SNI may switch it during the handshake).
    SSL_CTX* native() const;
    const std::vector<file_stamp>& files() const { return files_; }
    // The rotating ticket keys (null when session tickets are off); carried to the next
    // build through `previous`. Tests advance its clock to check rotation.
    const std::shared_ptr<ticket_keys>& tickets() const;

private:
    server_context();
    struct impl;
    std::unique_ptr<impl> impl_;
    std::vector<file_stamp> files_;
};

class client_context {
public:
    // `h2`: ALPN offers h2 (an upstream with protocol "h2"), else http/1.1.
    static std::shared_ptr<client_context> build(const config::upstream_tls_config& cfg, bool h2, std::string& error);
    ~client_context();

    SSL_CTX* native() const;
    // Prepares a new client SSL for an endpoint: SNI (unless the name is an IP), the name or
    // IP to verify (cfg.sni when set, else `endpoint_host`), ALPN, and a cached session for
    // `endpoint_key` to resume. Returns false (with `error`) when it cannot be set up.
    bool prepare(SSL* ssl, std::string_view endpoint_host, std::string_view endpoint_key, std::string& error) const;
    // After a successful handshake: remembers the session for the next connection to the endpoint.
    void remember(SSL* ssl, std::string_view endpoint_key) const;
    // Why verification failed, for the 502 log line ("certificate has expired", "hostname
    // mismatch: expected api.internal, certificate is for localhost"...).
    static std::string verify_error(SSL* ssl, std::string_view expected_name);
    const std::vector<file_stamp>& files() const { return files_; }

private:
    client_context();
    struct impl;
    std::unique_ptr<impl> impl_;
    std::vector<file_stamp> files_;
};

// Facts about an established connection, for headers, logs and metrics.
struct peer_certificate {
    bool present = false;   // the client sent a certificate and it verified
    std::string subject;    // RFC 2253
    std::string sha256;     // lowercase hex fingerprint of the DER certificate
};
peer_certificate verified_peer(SSL* ssl);
std::string_view version_name(SSL* ssl);  // "TLSv1.3", "TLSv1.2"
bool session_reused(SSL* ssl);
bool selected_h2(SSL* ssl);  // ALPN chose "h2"

// Call before freeing an SSL whose connection ends without a TLS error but also without a
// close_notify exchange (idle timeout, the peer just closed, shutdown): OpenSSL otherwise
// treats the close as a failure and drops the session from the server's cache (clients
// rarely send close_notify, so without this the session cache would hardly ever resume).
// Not after a TLS error: that session must go.
void keep_session_on_close(SSL* ssl);

}  // namespace sentinel::tls
