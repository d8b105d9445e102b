// client_context: TLS towards an upstream's endpoints.
//
// Session reuse: one resumable session per endpoint key, shared by every worker. TLS 1.2
// sessions exist when the handshake ends; TLS 1.3 sessions arrive later, in NewSessionTicket
// messages read along with the response, so both go through OpenSSL's new-session callback
// (the SSL carries its endpoint key in ex_data). remember() also stores what is there
// after the handshake, for callers that prefer to be explicit.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <ctime>
#include <mutex>
#include <unordered_map>

#include "tls/openssl_util.hpp"
#include "tls/tls_context.hpp"

namespace sentinel::tls {

using detail::openssl_error;

namespace {

// Enough for every endpoint of a large upstream; beyond it an arbitrary entry makes room
// (the cost is one full handshake).
constexpr std::size_t max_cached_sessions = 4096;

// What we offer: the upstream's protocol only, so the server cannot pick another.
constexpr unsigned char alpn_http1[] = "\x08http/1.1";
constexpr unsigned char alpn_h2[] = "\x02h2";

int client_impl_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

void free_endpoint_key(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<std::string*>(ptr); }

// The endpoint key travels with the SSL (freed with it) so the new-session callback knows
// where a late TLS 1.3 session belongs.
int endpoint_key_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_endpoint_key);
    return index;
}

bool is_ip_literal(const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Sessions are kept per endpoint and per verified name: a resumed session skips certificate
// verification, so it must never serve a connection that would verify another name.
std::string session_key(std::string_view endpoint_key, const std::string& name) {
    std::string key(endpoint_key);
    key += '\n';
    key += name;
    return key;
}

bool session_expired(const SSL_SESSION* s) {
    return SSL_SESSION_get_time(s) + SSL_SESSION_get_timeout(s) <= static_cast<long>(std::time(nullptr));
}

}  // namespace

struct client_context::impl {
    detail::ssl_ctx_ptr ctx;
    config::upstream_tls_config cfg;

    std::mutex sessions_mutex;
    std::unordered_map<std::string, SSL_SESSION*> sessions;  // one reference each

    ~impl() {
        for (auto& [key, s] : sessions) SSL_SESSION_free(s);
    }

    // Keeps a private copy of `session`. A copy, because OpenSSL marks a session
    // non-resumable when an SSL using it is freed without a TLS shutdown, and pooled
    // connections often end that way (idle timeout, the peer closed first).
    void store(const std::string& key, const SSL_SESSION* session) {
        SSL_SESSION* s = SSL_SESSION_dup(session);
        if (s == nullptr) return;
        SSL_SESSION* old = nullptr;
        {
            std::lock_guard lock(sessions_mutex);
            auto it = sessions.find(key);
            if (it == sessions.end()) {
                if (sessions.size() >= max_cached_sessions) {
                    old = sessions.begin()->second;
                    sessions.erase(sessions.begin());
                }
                sessions.emplace(key, s);
            } else {
                old = it->second;
                it->second = s;
            }
        }
        if (old != nullptr) SSL_SESSION_free(old);
    }

    // A copy of the endpoint's session for one connection (see store()), or null.
    SSL_SESSION* take(const std::string& key) {
        std::lock_guard lock(sessions_mutex);
        auto it = sessions.find(key);
        if (it == sessions.end()) return nullptr;
        if (session_expired(it->second)) {
            SSL_SESSION_free(it->second);
            sessions.erase(it);
            return nullptr;
        }
        return SSL_SESSION_dup(it->second);
    }

    static int on_new_session(SSL* ssl, SSL_SESSION* session) {
        auto* self = static_cast<impl*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), client_impl_index()));
        const auto* key = static_cast<const std::string*>(SSL_get_ex_data(ssl, endpoint_key_index()));
        if (self == nullptr || key == nullptr || SSL_SESSION_is_resumable(session) != 1) return 0;
        self->store(*key, session);
        return 0;  // we keep a copy, not OpenSSL's reference
    }
};

client_context::client_context() : impl_(std::make_unique<impl>()) {}
client_context::~client_context() = default;

SSL_CTX* client_context::native() const { return impl_->ctx.get(); }

std::shared_ptr<client_context> client_context::build(const config::upstream_tls_config& cfg, bool h2,
                                                      std::string& error) {
    std::shared_ptr<client_context> out(new client_context());
    impl& self = *out->impl_;
    self.cfg = cfg;
    ERR_clear_error();
    self.ctx.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX* ctx = self.ctx.get();
    if (ctx == nullptr) {
        error = "cannot create a TLS context: " + openssl_error();
        return nullptr;
    }
    SSL_CTX_set_ex_data(ctx, client_impl_index(), &self);
    SSL_CTX_set_default_passwd_cb(ctx, detail::refuse_password);
    const int min = cfg.min_version == config::tls_version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1 || SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        error = "cannot set the TLS versions: " + openssl_error();
        return nullptr;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    // Note: returns 0 on success, unlike most of OpenSSL.
    if (SSL_CTX_set_alpn_protos(ctx, h2 ? alpn_h2 : alpn_http1, h2 ? sizeof alpn_h2 - 1 : sizeof alpn_http1 - 1) != 0) {
        error = "cannot set ALPN: " + openssl_error();
        return nullptr;
    }

    if (cfg.insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        if (cfg.ca) {
            if (!detail::stamp_file(*cfg.ca, out->files_, error)) return nullptr;
            if (SSL_CTX_load_verify_locations(ctx, cfg.ca->c_str(), nullptr) != 1) {
                error = "ca " + *cfg.ca + ": " + openssl_error();
                return nullptr;
            }
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            error = "cannot load the system CA bundle: " + openssl_error();
            return nullptr;
        }
    }

    if (cfg.client_certificate) {
        const auto& cc = *cfg.client_certificate;
        if (!detail::stamp_file(cc.certificate, out->files_, error) || !detail::stamp_file(cc.key, out->files_, error))
            return nullptr;
        if (SSL_CTX_use_certificate_chain_file(ctx, cc.certificate.c_str()) != 1) {
            error = "certificate " + cc.certificate + ": " + openssl_error();
            return nullptr;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, cc.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            error = "key " + cc.key + ": " + openssl_error();
            return nullptr;
        }
    }

    // Sessions are kept per endpoint by us, not in OpenSSL's (per-context, unkeyed) cache.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, impl::on_new_session);
    return out;
}

bool client_context::prepare(SSL* ssl, std::string_view endpoint_host, std::string_view endpoint_key,
                             std::string& error) const {
    std::string name = impl_->cfg.sni ? *impl_->cfg.sni : std::string(endpoint_host);
    if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
    const bool ip = is_ip_literal(name);

    // RFC 6066: SNI carries host names only, never an address.
    if (!ip && !name.empty() && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
        error = "cannot set SNI \"" + name + "\": " + openssl_error();
        return false;
    }
    if (!impl_->cfg.insecure_skip_verify) {
        if (name.empty()) {
            error = "no host name to verify the certificate against";
            return false;
        }
        const bool ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1
                           : SSL_set1_host(ssl, name.c_str()) == 1;
        if (!ok) {
            error = "cannot verify against \"" + name + "\": " + openssl_error();
            return false;
        }
        // "*.example.test" covers "a.example.test", never "a-b*.example.test" style partials.
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }

    auto* old_key = static_cast<std::string*>(SSL_get_ex_data(ssl, endpoint_key_index()));
    auto* key = new std::string(session_key(endpoint_key, name));
    if (SSL_set_ex_data(ssl, endpoint_key_index(), key) != 1) {
        delete key;
        error = "cannot attach the endpoint key: " + openssl_error();
        return false;
    }
    delete old_key;  // prepare() called twice on one SSL
    if (SSL_SESSION* session = impl_->take(*key)) {
        SSL_set_session(ssl, session);  // takes its own reference
        SSL_SESSION_free(session);
    }
    return true;
}

void client_context::remember(SSL* ssl, std::string_view endpoint_key) const {
    SSL_SESSION* session = SSL_get1_session(ssl);
    if (session == nullptr) return;
    // A TLS 1.3 session is not resumable until its ticket arrives; the callback stores it then.
    if (SSL_SESSION_is_resumable(session) != 1) {
        SSL_SESSION_free(session);
        return;
    }
    // The key prepare() attached also holds the verified name; fall back to the caller's.
    const auto* key = static_cast<const std::string*>(SSL_get_ex_data(ssl, endpoint_key_index()));
    impl_->store(key != nullptr ? *key : std::string(endpoint_key), session);
    SSL_SESSION_free(session);
}

std::string client_context::verify_error(SSL* ssl, std::string_view expected_name) {
    const long result = SSL_get_verify_result(ssl);
    if (result == X509_V_OK) return {};
    std::string line = X509_verify_cert_error_string(result);
    if (result != X509_V_ERR_HOSTNAME_MISMATCH && result != X509_V_ERR_IP_ADDRESS_MISMATCH) return line;

    const bool ip = result == X509_V_ERR_IP_ADDRESS_MISMATCH;
    std::string expected(expected_name);
    if (expected.empty() && !ip) {
        const char* host = X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0);
        if (host != nullptr) expected = host;
    } else if (expected.empty()) {
        char* addr = X509_VERIFY_PARAM_get1_ip_asc(SSL_get0_param(ssl));
        if (addr != nullptr) expected = addr;
        OPENSSL_free(addr);
    }
    // Verification failed, so the peer certificate was never accepted; its chain is still kept.
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert == nullptr) {
        STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
        if (chain != nullptr && sk_X509_num(chain) > 0) cert = sk_X509_value(chain, 0);
    }
    line = (ip ? "IP address mismatch: expected " : "hostname mismatch: expected ") + expected;
    if (cert != nullptr) {
        std::string names;
        for (const auto& n : detail::certificate_names(cert, true)) names += (names.empty() ? "" : ", ") + n;
        line += ", certificate is for " + (names.empty() ? std::string("no name") : names);
    }
    return line;
}

}  // namespace sentinel::tls
