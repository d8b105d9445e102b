// server_context: the TLS side of a `protocol "https"` listener.
//
// Certificates are grouped by the names they are for; each group gets its own SSL_CTX, all
// configured identically (versions, ciphers, verification, callbacks) so switching context
// on SNI changes nothing but the certificates. The first certificate's group is the default.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <unordered_map>

#include "tls/openssl_util.hpp"
#include "tls/ticket_keys.hpp"
#include "tls/tls_context.hpp"

namespace sentinel::tls {

using detail::openssl_error;
using detail::ssl_ctx_ptr;
using detail::x509_ptr;

namespace {

// Forward-secret AEAD suites only: no static-RSA key exchange, no CBC, nothing legacy.
constexpr const char* default_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
constexpr const char* default_groups = "X25519:P-256:P-384";
// Same for every context of every listener: each listener has its own cache and ticket
// keys, so sessions never cross listeners anyway.
constexpr unsigned char session_id_context[] = "sentinel";

// ALPN protocols we serve, in our preference order (wire format): h2 first unless the
// listener has `http2 #false`. A client offering only protocols we do not serve gets no ALPN
// and proceeds as HTTP/1.1, as with nginx (a browser always offers http/1.1 as well).
constexpr unsigned char alpn_with_h2[] = "\x02h2\x08http/1.1\x08http/1.0";
constexpr unsigned char alpn_http1[] = "\x08http/1.1\x08http/1.0";

int server_impl_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

int openssl_version(config::tls_version v) { return v == config::tls_version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION; }

bool read_file(const std::string& path, std::vector<unsigned char>& out, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = path + ": cannot open";
        return false;
    }
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return true;
}

// The OCSP response must parse, be a successful response, and (when the chain carries the
// issuer) hold a status for this very certificate: stapling a response for another
// certificate makes strict clients fail every handshake.
bool check_ocsp(const std::vector<unsigned char>& der, X509* leaf, X509* issuer, std::string& error) {
    const unsigned char* p = der.data();
    OCSP_RESPONSE* resp = d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size()));
    if (resp == nullptr) {
        error = "not a DER OCSP response (" + openssl_error() + ")";
        return false;
    }
    const int status = OCSP_response_status(resp);
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        error = std::string("OCSP response status is ") + OCSP_response_status_str(status);
        OCSP_RESPONSE_free(resp);
        return false;
    }
    bool ok = true;
    if (issuer != nullptr) {
        OCSP_BASICRESP* basic = OCSP_response_get1_basic(resp);
        ok = false;
        for (int i = 0; basic != nullptr && i < OCSP_resp_count(basic) && !ok; ++i) {
            const OCSP_CERTID* id = OCSP_SINGLERESP_get0_id(OCSP_resp_get0(basic, i));
            ASN1_OBJECT* md_oid = nullptr;
            if (OCSP_id_get0_info(nullptr, &md_oid, nullptr, nullptr, const_cast<OCSP_CERTID*>(id)) != 1) continue;
            // Rebuild our certificate's id with the response's hash algorithm, then compare.
            const EVP_MD* md = EVP_get_digestbyobj(md_oid);
            OCSP_CERTID* ours = md != nullptr ? OCSP_cert_to_id(md, leaf, issuer) : nullptr;
            ok = ours != nullptr && OCSP_id_cmp(ours, id) == 0;
            OCSP_CERTID_free(ours);
        }
        OCSP_BASICRESP_free(basic);
        if (!ok) error = "the OCSP response is not for this certificate";
    }
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
    return ok;
}

// One certificate of a name group, with the OCSP response stapled when it is selected.
struct loaded_certificate {
    x509_ptr leaf;
    int key_type = 0;
    std::vector<unsigned char> ocsp;  // empty: nothing to staple
};

// Certificates for the same set of names, served from one SSL_CTX.
struct name_group {
    ssl_ctx_ptr ctx;
    std::vector<std::string> names;  // sorted, lowercase
    std::vector<loaded_certificate> certificates;
};

}  // namespace

struct server_context::impl {
    std::vector<std::unique_ptr<name_group>> groups;  // [0] is the default
    std::unordered_map<std::string, name_group*> exact;
    std::unordered_map<std::string, name_group*> wildcard;  // "example.test" for "*.example.test"
    std::shared_ptr<ticket_keys> tickets;
    bool h2 = false;  // offer h2 in ALPN

    name_group* pick(std::string_view servername) const {
        std::string name = detail::lowercase(servername);
        if (!name.empty() && name.back() == '.') name.pop_back();  // "localhost." is "localhost"
        if (auto it = exact.find(name); it != exact.end()) return it->second;
        // A wildcard stands for exactly one label: "a.example.test", not "a.b.example.test".
        if (auto dot = name.find('.'); dot != std::string::npos && dot > 0) {
            if (auto it = wildcard.find(name.substr(dot + 1)); it != wildcard.end()) return it->second;
        }
        return groups.front().get();
    }

    bool configure(SSL_CTX* ctx, name_group* group, const config::listener_tls_config& cfg, bool any_ocsp,
                   std::string& error);

    static int on_servername(SSL* ssl, int* alert, void* arg);
    static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                       unsigned int inlen, void* arg);
    static int on_ticket_key(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                             EVP_MAC_CTX* mac, int encrypt);
    static int on_status(SSL* ssl, void* arg);
};

int server_context::impl::on_servername(SSL* ssl, int* alert, void* arg) {
    const auto* self = static_cast<const impl*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
    name_group* group = self->pick(name);
    if (group->ctx.get() != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, group->ctx.get()) == nullptr) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

int server_context::impl::on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                                  unsigned int inlen, void* arg) {
    const bool h2 = static_cast<const impl*>(arg)->h2;
    unsigned char* selected = nullptr;
    unsigned char selected_len = 0;
    // Our order wins (SSL_select_next_proto walks the server list first).
    if (SSL_select_next_proto(&selected, &selected_len, h2 ? alpn_with_h2 : alpn_http1,
                              h2 ? sizeof alpn_with_h2 - 1 : sizeof alpn_http1 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    *outlen = selected_len;
    return SSL_TLSEXT_ERR_OK;
}

int server_context::impl::on_ticket_key(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                                        EVP_MAC_CTX* mac, int encrypt) {
    const auto* self = static_cast<const impl*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), server_impl_index()));
    if (self == nullptr || !self->tickets) return encrypt ? -1 : 0;

    ticket_keys::key key;
    int result = 1;
    if (encrypt) {
        key = self->tickets->current();
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) return -1;
        std::memcpy(name, key.name.data(), ticket_keys::name_size);
        if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) return -1;
    } else {
        switch (self->tickets->find(name, key)) {
            case ticket_keys::match::unknown: return 0;  // expired or foreign: full handshake
            case ticket_keys::match::current: result = 1; break;
            case ticket_keys::match::previous: result = 2; break;  // accept, and issue a fresh ticket
        }
        if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) return -1;
    }
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
    return result;
}

int server_context::impl::on_status(SSL* ssl, void* arg) {
    const auto* group = static_cast<const name_group*>(arg);
    // By now OpenSSL has chosen the certificate (RSA or ECDSA) for this handshake.
    X509* chosen = SSL_get_certificate(ssl);
    if (chosen == nullptr) return SSL_TLSEXT_ERR_NOACK;
    for (const auto& c : group->certificates) {
        if (c.ocsp.empty() || X509_cmp(chosen, c.leaf.get()) != 0) continue;
        // OpenSSL takes ownership of the copy and frees it with the connection.
        auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(c.ocsp.size()));
        if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
        std::memcpy(copy, c.ocsp.data(), c.ocsp.size());
        SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(c.ocsp.size()));
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

bool server_context::impl::configure(SSL_CTX* ctx, name_group* group, const config::listener_tls_config& cfg,
                                     bool any_ocsp, std::string& error) {
    SSL_CTX_set_ex_data(ctx, server_impl_index(), this);
    SSL_CTX_set_default_passwd_cb(ctx, detail::refuse_password);

    if (SSL_CTX_set_min_proto_version(ctx, openssl_version(cfg.min_version)) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, openssl_version(cfg.max_version)) != 1) {
        error = "cannot set the TLS versions: " + openssl_error();
        return false;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION | (cfg.session_tickets ? 0 : SSL_OP_NO_TICKET));

    // set_cipher_list only fails when nothing at all matched; that is the error users see.
    const std::string ciphers = cfg.ciphers.value_or(default_ciphers);
    if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
        error = "ciphers \"" + ciphers + "\": no usable TLS 1.2 cipher (" + openssl_error() + ")";
        return false;
    }
    if (cfg.cipher_suites && SSL_CTX_set_ciphersuites(ctx, cfg.cipher_suites->c_str()) != 1) {
        error = "cipher-suites \"" + *cfg.cipher_suites + "\": not a valid TLS 1.3 suite list (" + openssl_error() + ")";
        return false;
    }
    std::string groups;
    for (const auto& g : cfg.groups) groups += (groups.empty() ? "" : ":") + g;
    if (groups.empty()) groups = default_groups;
    if (SSL_CTX_set1_groups_list(ctx, groups.c_str()) != 1) {
        error = "groups \"" + groups + "\": unknown or unsupported group (" + openssl_error() + ")";
        return false;
    }

    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, this);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, this);

    if (cfg.session_tickets) SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    if (cfg.session_cache_size > 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, static_cast<long>(cfg.session_cache_size));
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        // TLS 1.3 without tickets resumes from the cache only; with neither, tickets are useless.
        if (!cfg.session_tickets) SSL_CTX_set_num_tickets(ctx, 0);
    }
    const auto timeout = std::chrono::duration_cast<std::chrono::seconds>(cfg.session_timeout).count();
    SSL_CTX_set_timeout(ctx, std::max<long>(1, static_cast<long>(timeout)));
    SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof session_id_context - 1);

    if (cfg.client_auth != config::client_auth_mode::none) {
        if (!cfg.client_ca) {
            error = "client-auth needs client-ca";
            return false;
        }
        if (SSL_CTX_load_verify_locations(ctx, cfg.client_ca->c_str(), nullptr) != 1) {
            error = "client-ca " + *cfg.client_ca + ": " + openssl_error();
            return false;
        }
        // The CA names tell clients which certificate to send.
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.client_ca->c_str());
        if (names == nullptr) {
            error = "client-ca " + *cfg.client_ca + ": " + openssl_error("no CA certificate");
            return false;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        int mode = SSL_VERIFY_PEER;
        if (cfg.client_auth == config::client_auth_mode::required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, nullptr);
    }

    if (any_ocsp) {
        SSL_CTX_set_tlsext_status_cb(ctx, on_status);
        SSL_CTX_set_tlsext_status_arg(ctx, group);
    }
    return true;
}

server_context::server_context() : impl_(std::make_unique<impl>()) {}
server_context::~server_context() = default;

SSL_CTX* server_context::native() const { return impl_->groups.front()->ctx.get(); }

const std::shared_ptr<ticket_keys>& server_context::tickets() const { return impl_->tickets; }

std::shared_ptr<server_context> server_context::build(const config::listener_tls_config& cfg, bool offer_h2,
                                                      const server_context* previous, std::string& error) {
    if (cfg.certificates.empty()) {
        error = "a TLS listener needs a certificate";
        return nullptr;
    }
    if (openssl_version(cfg.min_version) > openssl_version(cfg.max_version)) {
        error = "min-version is above max-version";
        return nullptr;
    }
    std::shared_ptr<server_context> out(new server_context());
    impl& self = *out->impl_;
    self.h2 = offer_h2;
    ERR_clear_error();

    if (cfg.session_tickets) {
        const auto rotation = std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.ticket_key_rotation);
        if (previous != nullptr && previous->impl_->tickets) {
            self.tickets = previous->impl_->tickets;
            self.tickets->set_rotation(rotation);
        } else {
            self.tickets = std::make_shared<ticket_keys>(rotation);
        }
    }
    const bool any_ocsp = std::any_of(cfg.certificates.begin(), cfg.certificates.end(),
                                      [](const config::certificate_config& c) { return c.ocsp.has_value(); });

    for (const auto& cert : cfg.certificates) {
        if (!detail::stamp_file(cert.certificate, out->files_, error) || !detail::stamp_file(cert.key, out->files_, error))
            return nullptr;
        auto chain = detail::read_pem_certificates(cert.certificate, error);
        if (chain.empty()) return nullptr;
        X509* leaf = chain.front().get();

        std::vector<std::string> names = detail::certificate_names(leaf, false);
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());

        name_group* group = nullptr;
        for (auto& g : self.groups)
            if (g->names == names) group = g.get();
        if (group == nullptr) {
            auto g = std::make_unique<name_group>();
            g->names = names;
            g->ctx.reset(SSL_CTX_new(TLS_server_method()));
            if (!g->ctx) {
                error = "cannot create a TLS context: " + openssl_error();
                return nullptr;
            }
            if (!self.configure(g->ctx.get(), g.get(), cfg, any_ocsp, error)) return nullptr;
            group = g.get();
            self.groups.push_back(std::move(g));
        }

        loaded_certificate loaded;
        EVP_PKEY* pub = X509_get0_pubkey(leaf);
        loaded.key_type = pub != nullptr ? EVP_PKEY_get_base_id(pub) : 0;
        for (const auto& other : group->certificates) {
            if (other.key_type == loaded.key_type) {
                // OpenSSL keeps one certificate per key type per context: the second would
                // silently replace the first.
                error = "certificate " + cert.certificate +
                        ": another certificate with the same key type is already configured for the same names";
                return nullptr;
            }
        }
        // Loading the chain fills the slot of the leaf's key type, so RSA and ECDSA coexist.
        if (SSL_CTX_use_certificate_chain_file(group->ctx.get(), cert.certificate.c_str()) != 1) {
            error = "certificate " + cert.certificate + ": " + openssl_error();
            return nullptr;
        }
        if (SSL_CTX_use_PrivateKey_file(group->ctx.get(), cert.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(group->ctx.get()) != 1) {
            error = "key " + cert.key + ": " + openssl_error();
            return nullptr;
        }
        if (cert.ocsp) {
            if (!detail::stamp_file(*cert.ocsp, out->files_, error) || !read_file(*cert.ocsp, loaded.ocsp, error))
                return nullptr;
            X509* issuer = nullptr;
            for (std::size_t i = 1; i < chain.size() && issuer == nullptr; ++i)
                if (X509_check_issued(chain[i].get(), leaf) == X509_V_OK) issuer = chain[i].get();
            std::string why;
            if (!check_ocsp(loaded.ocsp, leaf, issuer, why)) {
                error = "ocsp " + *cert.ocsp + ": " + why;
                return nullptr;
            }
        }
        loaded.leaf = std::move(chain.front());
        group->certificates.push_back(std::move(loaded));
    }

    // Earlier certificates win when several claim a name.
    for (const auto& g : self.groups) {
        for (const auto& name : g->names) {
            if (name.size() > 2 && name.compare(0, 2, "*.") == 0)
                self.wildcard.emplace(name.substr(2), g.get());
            else if (name.find('*') == std::string::npos)
                self.exact.emplace(name, g.get());
        }
    }
    if (cfg.client_ca && !detail::stamp_file(*cfg.client_ca, out->files_, error)) return nullptr;
    return out;
}

}  // namespace sentinel::tls
