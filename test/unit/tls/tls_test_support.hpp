// In-memory TLS handshakes for the tls tests: two SSL objects joined by a BIO pair, pumped
// until both finish or one gives up. No sockets, no threads.
#pragma once

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>

#include "tls/tls_context.hpp"

namespace sentinel::tls::testing {

struct ssl_free {
    void operator()(SSL* p) const { SSL_free(p); }
};
struct ssl_ctx_free {
    void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct session_free {
    void operator()(SSL_SESSION* p) const { SSL_SESSION_free(p); }
};
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_free>;
using session_ptr = std::unique_ptr<SSL_SESSION, session_free>;

// Test certificates from test/support/make-certs.sh. CTest runs every test case in its own
// process and making the set takes over a second (RSA), so one set per day is shared by
// all of them: made aside and renamed into place, so a parallel process never sees half a
// set; per day, so the 30-day certificates never go stale in an old build tree.
class certs {
public:
    static const std::string& dir() {
        static const std::string d = [] {
            namespace fs = std::filesystem;
            char day[16];
            const std::time_t now = std::time(nullptr);
            std::strftime(day, sizeof day, "%Y%m%d", std::gmtime(&now));
            const fs::path final_dir = std::string(SENTINEL_TLS_TEST_CERTS) + "-" + day;
            if (fs::exists(final_dir / ".complete")) return final_dir.string();
            fs::create_directories(final_dir.parent_path());
            std::string tmp = final_dir.string() + ".tmp-XXXXXX";
            if (mkdtemp(tmp.data()) == nullptr) std::abort();
            const std::string cmd = std::string("sh ") + SENTINEL_SOURCE_DIR + "/test/support/make-certs.sh " + tmp;
            if (std::system(cmd.c_str()) != 0) std::abort();
            std::error_code ec;
            fs::rename(tmp, final_dir, ec);
            if (ec) {
                fs::remove_all(tmp, ec);  // another process got there first
            } else {
                // The winner clears earlier days' sets.
                const std::string prefix = fs::path(SENTINEL_TLS_TEST_CERTS).filename().string() + "-";
                for (const auto& e : fs::directory_iterator(final_dir.parent_path(), ec)) {
                    const std::string name = e.path().filename().string();
                    if (name.rfind(prefix, 0) == 0 && e.path() != final_dir && name.find(".tmp-") == std::string::npos)
                        fs::remove_all(e.path(), ec);
                }
            }
            return final_dir.string();
        }();
        return d;
    }
    static std::string path(const std::string& name) { return dir() + "/" + name; }
    static config::certificate_config pair(const std::string& base) {
        return config::certificate_config{path(base + ".pem"), path(base + ".key"), std::nullopt};
    }
};

struct handshake_result {
    bool ok = false;
    std::string client_error;
    std::string server_error;
};

inline std::string drain_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out;
}

// Connects `client` and `server` in memory and runs both handshakes; afterwards pumps a few
// reads so post-handshake messages (TLS 1.3 NewSessionTicket) reach the client.
inline handshake_result handshake(SSL* client, SSL* server) {
    BIO* client_bio = nullptr;
    BIO* server_bio = nullptr;
    BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
    SSL_set_bio(client, client_bio, client_bio);
    SSL_set_bio(server, server_bio, server_bio);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);

    handshake_result r;
    bool client_done = false, server_done = false, failed = false;
    auto step = [&](SSL* ssl, bool& done, std::string& error) {
        if (done) return;
        const int rc = SSL_do_handshake(ssl);
        if (rc == 1) {
            done = true;
            return;
        }
        const int e = SSL_get_error(ssl, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            error = "SSL error " + std::to_string(e) + ": " + drain_errors();
            failed = true;
        }
    };
    for (int i = 0; i < 50 && !(client_done && server_done); ++i) {
        step(client, client_done, r.client_error);
        step(server, server_done, r.server_error);
        if (failed) {
            // Let the other side read the alert, for its error message.
            step(client, client_done, r.client_error);
            step(server, server_done, r.server_error);
            break;
        }
    }
    r.ok = client_done && server_done && !failed;
    if (r.ok) {
        char buf[64];
        for (int i = 0; i < 4; ++i) {
            SSL_read(client, buf, sizeof buf);
            SSL_read(server, buf, sizeof buf);
        }
    }
    ERR_clear_error();
    return r;
}

// A plain client context trusting the test CA (for server tests that need to shape the
// client: sigalgs, versions, ciphers...).
inline ssl_ctx_ptr test_client_ctx() {
    ssl_ctx_ptr ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_load_verify_locations(ctx.get(), certs::path("ca.pem").c_str(), nullptr);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return ctx;
}

inline std::string subject_cn(X509* cert) {
    if (cert == nullptr) return "";
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return buf;
}

inline int key_type(X509* cert) { return cert != nullptr ? EVP_PKEY_get_base_id(X509_get0_pubkey(cert)) : 0; }

}  // namespace sentinel::tls::testing
