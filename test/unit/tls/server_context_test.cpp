// server_context: certificate choice (SNI, key type), protocol policy (versions, ciphers,
// ALPN), resumption (tickets across rotations and rebuilds, the session cache), client
// certificates and OCSP stapling, all through in-memory handshakes.
#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstring>
#include <functional>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "tls/ticket_keys.hpp"
#include "tls/tls_context.hpp"
#include "tls_test_support.hpp"

namespace sentinel::tls {
namespace {

using testing::certs;
using testing::handshake;
using testing::session_ptr;
using testing::ssl_ctx_ptr;
using testing::ssl_ptr;

config::listener_tls_config listener(std::vector<config::certificate_config> list) {
    config::listener_tls_config cfg;
    cfg.certificates = std::move(list);
    return cfg;
}

std::shared_ptr<server_context> build(const config::listener_tls_config& cfg, const server_context* previous = nullptr,
                                      bool h2 = false) {
    std::string error;
    auto ctx = server_context::build(cfg, h2, previous, error);
    EXPECT_TRUE(ctx) << error;
    return ctx;
}

std::string build_error(const config::listener_tls_config& cfg) {
    std::string error;
    auto ctx = server_context::build(cfg, false, nullptr, error);
    EXPECT_FALSE(ctx);
    return error;
}

// One connection from a shaped test client to `server`.
struct conn {
    ssl_ptr client;
    ssl_ptr server;
    testing::handshake_result result;

    conn() = default;
    conn(conn&&) = default;
    // As the listener does when a connection ends without a TLS error.
    ~conn() {
        if (server && result.ok) keep_session_on_close(server.get());
    }
};

conn connect(const server_context& server, SSL_CTX* client_ctx, const char* sni,
             const std::function<void(SSL*)>& shape = nullptr, SSL_SESSION* resume = nullptr) {
    conn c;
    c.client.reset(SSL_new(client_ctx));
    c.server.reset(SSL_new(server.native()));
    if (sni != nullptr) SSL_set_tlsext_host_name(c.client.get(), sni);
    if (shape) shape(c.client.get());
    if (resume != nullptr) SSL_set_session(c.client.get(), resume);
    c.result = handshake(c.client.get(), c.server.get());
    return c;
}

std::string served_cn(const conn& c) { return testing::subject_cn(SSL_get0_peer_certificate(c.client.get())); }

TEST(ServerContext, SniExactMatchPicksThatCertificateCaseInsensitively) {
    auto server = build(listener({certs::pair("site"), certs::pair("other")}));
    ASSERT_TRUE(server);
    auto client = testing::test_client_ctx();
    for (const char* name : {"other.test", "OTHER.Test", "other.test."}) {
        auto c = connect(*server, client.get(), name);
        ASSERT_TRUE(c.result.ok) << c.result.client_error << " / " << c.result.server_error;
        EXPECT_EQ(served_cn(c), "other.test") << name;
    }
    auto c = connect(*server, client.get(), "localhost");
    ASSERT_TRUE(c.result.ok);
    EXPECT_EQ(served_cn(c), "localhost");
}

TEST(ServerContext, SniWildcardCoversOneLabelElseTheDefault) {
    auto server = build(listener({certs::pair("other"), certs::pair("site")}));  // other is the default
    ASSERT_TRUE(server);
    auto client = testing::test_client_ctx();
    SSL_CTX_set_verify(client.get(), SSL_VERIFY_NONE, nullptr);  // the default is for another name
    EXPECT_EQ(served_cn(connect(*server, client.get(), "api.example.test")), "localhost");
    EXPECT_EQ(served_cn(connect(*server, client.get(), "example.test")), "localhost");
    EXPECT_EQ(served_cn(connect(*server, client.get(), "a.b.example.test")), "other.test");
    EXPECT_EQ(served_cn(connect(*server, client.get(), "unknown.test")), "other.test");
    EXPECT_EQ(served_cn(connect(*server, client.get(), nullptr)), "other.test");
}

TEST(ServerContext, EcdsaAndRsaForTheSameNamesAreChosenByTheClientsSignatureAlgorithms) {
    auto server = build(listener({certs::pair("site"), certs::pair("site-rsa")}));
    ASSERT_TRUE(server);
    auto client = testing::test_client_ctx();
    for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        SSL_CTX_set_max_proto_version(client.get(), version);
        auto rsa = connect(*server, client.get(), "localhost", [](SSL* ssl) {
            SSL_set1_sigalgs_list(ssl, "rsa_pss_rsae_sha256:rsa_pkcs1_sha256");
        });
        ASSERT_TRUE(rsa.result.ok) << rsa.result.client_error << " / " << rsa.result.server_error;
        EXPECT_EQ(testing::key_type(SSL_get0_peer_certificate(rsa.client.get())), EVP_PKEY_RSA);
        auto ec = connect(*server, client.get(), "localhost",
                          [](SSL* ssl) { SSL_set1_sigalgs_list(ssl, "ecdsa_secp256r1_sha256"); });
        ASSERT_TRUE(ec.result.ok) << ec.result.client_error << " / " << ec.result.server_error;
        EXPECT_EQ(testing::key_type(SSL_get0_peer_certificate(ec.client.get())), EVP_PKEY_EC);
    }
}

TEST(ServerContext, TwoCertificatesOfOneKeyTypeForTheSameNamesIsAnError) {
    auto cfg = listener({certs::pair("site"), certs::pair("site")});
    EXPECT_NE(build_error(cfg).find("same key type"), std::string::npos);
}

TEST(ServerContext, VersionsAreEnforced) {
    auto cfg = listener({certs::pair("site")});
    cfg.min_version = config::tls_version::tls1_3;
    auto server = build(cfg);
    ASSERT_TRUE(server);
    auto client = testing::test_client_ctx();
    SSL_CTX_set_max_proto_version(client.get(), TLS1_2_VERSION);
    EXPECT_FALSE(connect(*server, client.get(), "localhost").result.ok);

    cfg.min_version = config::tls_version::tls1_2;
    cfg.max_version = config::tls_version::tls1_2;
    auto server12 = build(cfg);
    auto any = testing::test_client_ctx();
    auto c = connect(*server12, any.get(), "localhost");
    ASSERT_TRUE(c.result.ok);
    EXPECT_EQ(version_name(c.server.get()), "TLSv1.2");
    auto c13 = connect(*build(listener({certs::pair("site")})), any.get(), "localhost");
    EXPECT_EQ(version_name(c13.server.get()), "TLSv1.3");

    // TLS 1.0/1.1 are never on offer, even to a client that wants nothing else.
    auto old = testing::test_client_ctx();
    SSL_CTX_set_min_proto_version(old.get(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(old.get(), TLS1_1_VERSION);
    SSL_CTX_set_security_level(old.get(), 0);
    EXPECT_FALSE(connect(*server12, old.get(), "localhost").result.ok);
}

TEST(ServerContext, DefaultTls12CiphersAreForwardSecretAeadOnly) {
    auto ecdsa = build(listener({certs::pair("site")}));
    auto rsa = build(listener({certs::pair("site-rsa")}));
    ASSERT_TRUE(ecdsa && rsa);
    auto client_with = [](const char* ciphers) {
        auto ctx = testing::test_client_ctx();
        SSL_CTX_set_max_proto_version(ctx.get(), TLS1_2_VERSION);
        EXPECT_EQ(SSL_CTX_set_cipher_list(ctx.get(), ciphers), 1) << ciphers;
        return ctx;
    };
    EXPECT_TRUE(connect(*ecdsa, client_with("ECDHE-ECDSA-AES128-GCM-SHA256").get(), "localhost").result.ok);
    EXPECT_TRUE(connect(*ecdsa, client_with("ECDHE-ECDSA-CHACHA20-POLY1305").get(), "localhost").result.ok);
    EXPECT_TRUE(connect(*rsa, client_with("ECDHE-RSA-AES256-GCM-SHA384").get(), "localhost").result.ok);
    EXPECT_FALSE(connect(*ecdsa, client_with("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384").get(), "localhost").result.ok);
    EXPECT_FALSE(connect(*rsa, client_with("ECDHE-RSA-AES128-SHA").get(), "localhost").result.ok);
    EXPECT_FALSE(connect(*rsa, client_with("AES128-GCM-SHA256:AES256-GCM-SHA384").get(), "localhost").result.ok);
    EXPECT_FALSE(connect(*rsa, client_with("DHE-RSA-AES128-GCM-SHA256").get(), "localhost").result.ok);
}

TEST(ServerContext, ConfiguredCiphersAndGroupsOverrideAndBadOnesNameTheSetting) {
    auto cfg = listener({certs::pair("site")});
    cfg.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
    cfg.cipher_suites = "TLS_CHACHA20_POLY1305_SHA256";
    cfg.groups = {"P-384"};
    auto server = build(cfg);
    ASSERT_TRUE(server);
    auto client = testing::test_client_ctx();
    auto c = connect(*server, client.get(), "localhost");
    ASSERT_TRUE(c.result.ok);
    EXPECT_STREQ(SSL_get_cipher_name(c.client.get()), "TLS_CHACHA20_POLY1305_SHA256");
    SSL_CTX_set_max_proto_version(client.get(), TLS1_2_VERSION);
    auto c12 = connect(*server, client.get(), "localhost");
    ASSERT_TRUE(c12.result.ok);
    EXPECT_STREQ(SSL_get_cipher_name(c12.client.get()), "ECDHE-ECDSA-AES256-GCM-SHA384");
    auto x25519_only = testing::test_client_ctx();
    SSL_CTX_set1_groups_list(x25519_only.get(), "X25519");
    EXPECT_FALSE(connect(*server, x25519_only.get(), "localhost").result.ok);

    auto bad = listener({certs::pair("site")});
    bad.ciphers = "NOT-A-CIPHER";
    EXPECT_NE(build_error(bad).find("ciphers"), std::string::npos);
    bad = listener({certs::pair("site")});
    bad.cipher_suites = "TLS_NOPE";
    EXPECT_NE(build_error(bad).find("cipher-suites"), std::string::npos);
    bad = listener({certs::pair("site")});
    bad.groups = {"X25519", "nope"};
    EXPECT_NE(build_error(bad).find("groups"), std::string::npos);
}

std::string alpn_of(SSL* ssl) {
    const unsigned char* data = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &data, &len);
    return std::string(reinterpret_cast<const char*>(data), len);
}

TEST(ServerContext, AlpnPrefersH2WhenTheListenerServesIt) {
    auto server = build(listener({certs::pair("site")}), nullptr, true);
    auto client = testing::test_client_ctx();
    // Our preference wins, whatever the client's order.
    auto both = connect(*server, client.get(), "localhost", [](SSL* ssl) {
        static const unsigned char protos[] = "\x08http/1.1\x02h2";
        SSL_set_alpn_protos(ssl, protos, sizeof protos - 1);
    });
    ASSERT_TRUE(both.result.ok);
    EXPECT_EQ(alpn_of(both.server.get()), "h2");
    auto http1 = connect(*server, client.get(), "localhost", [](SSL* ssl) {
        static const unsigned char protos[] = "\x08http/1.1";
        SSL_set_alpn_protos(ssl, protos, sizeof protos - 1);
    });
    ASSERT_TRUE(http1.result.ok);
    EXPECT_EQ(alpn_of(http1.server.get()), "http/1.1");
}

TEST(ServerContext, AlpnWithoutHttp2SelectsHttp11AndNeverH2) {
    auto server = build(listener({certs::pair("site")}));
    auto client = testing::test_client_ctx();
    auto both = connect(*server, client.get(), "localhost", [](SSL* ssl) {
        static const unsigned char protos[] = "\x02h2\x08http/1.1";
        SSL_set_alpn_protos(ssl, protos, sizeof protos - 1);
    });
    ASSERT_TRUE(both.result.ok);
    EXPECT_EQ(alpn_of(both.client.get()), "http/1.1");
    EXPECT_EQ(alpn_of(both.server.get()), "http/1.1");

    // h2 only: no ALPN at all, and the connection goes on (as HTTP/1.1).
    auto h2 = connect(*server, client.get(), "localhost", [](SSL* ssl) {
        static const unsigned char protos[] = "\x02h2";
        SSL_set_alpn_protos(ssl, protos, sizeof protos - 1);
    });
    ASSERT_TRUE(h2.result.ok) << h2.result.client_error;
    EXPECT_EQ(alpn_of(h2.client.get()), "");

    auto none = connect(*server, client.get(), "localhost");
    ASSERT_TRUE(none.result.ok);
    EXPECT_EQ(alpn_of(none.client.get()), "");
}

// A first handshake, then a second one offering the first one's session.
struct resumption {
    bool first_ok = false;
    bool reused = false;
    session_ptr first_session;
    session_ptr second_session;
};

// A copy: OpenSSL marks the session non-resumable when the test's client SSL is freed
// without a shutdown.
session_ptr session_of(SSL* ssl) { return session_ptr(SSL_SESSION_dup(SSL_get0_session(ssl))); }

bool resumes(const server_context& server, SSL_CTX* client, SSL_SESSION* session) {
    auto c = connect(server, client, "localhost", nullptr, session);
    EXPECT_TRUE(c.result.ok) << c.result.client_error << " / " << c.result.server_error;
    return c.result.ok && session_reused(c.client.get()) && session_reused(c.server.get());
}

session_ptr first_session(const server_context& server, SSL_CTX* client) {
    auto c = connect(server, client, "localhost");
    EXPECT_TRUE(c.result.ok) << c.result.client_error << " / " << c.result.server_error;
    EXPECT_FALSE(session_reused(c.client.get()));
    return session_of(c.client.get());
}

class ServerResumption : public ::testing::TestWithParam<int> {
protected:
    ssl_ctx_ptr client() {
        auto ctx = testing::test_client_ctx();
        SSL_CTX_set_max_proto_version(ctx.get(), GetParam());
        return ctx;
    }
};

TEST_P(ServerResumption, TicketResumes) {
    auto cfg = listener({certs::pair("site")});
    cfg.session_cache_size = 0;  // tickets alone
    auto server = build(cfg);
    auto client = this->client();
    auto s = first_session(*server, client.get());
    ASSERT_TRUE(s);
    ASSERT_TRUE(SSL_SESSION_has_ticket(s.get()));
    EXPECT_TRUE(resumes(*server, client.get(), s.get()));
}

TEST_P(ServerResumption, TicketsSurviveARebuildWithPreviousButNotAFreshBuild) {
    auto cfg = listener({certs::pair("site")});
    cfg.session_cache_size = 0;
    auto server = build(cfg);
    auto client = this->client();
    auto s = first_session(*server, client.get());
    auto rebuilt = build(cfg, server.get());
    EXPECT_EQ(rebuilt->tickets(), server->tickets());
    server.reset();  // the old snapshot is gone
    EXPECT_TRUE(resumes(*rebuilt, client.get(), s.get()));
    auto fresh = build(cfg);
    EXPECT_FALSE(resumes(*fresh, client.get(), s.get()));
}

TEST_P(ServerResumption, TicketsOutliveOneRotationButNotTwo) {
    auto cfg = listener({certs::pair("site")});
    cfg.session_cache_size = 0;
    cfg.ticket_key_rotation = std::chrono::hours(1);
    auto server = build(cfg);
    auto client = this->client();
    auto s = first_session(*server, client.get());
    auto s2 = first_session(*server, client.get());

    server->tickets()->advance_clock_for_test(std::chrono::minutes(61));
    auto c = connect(*server, client.get(), "localhost", nullptr, s.get());
    ASSERT_TRUE(c.result.ok);
    EXPECT_TRUE(session_reused(c.client.get()));
    // Decrypted under the previous key: the client gets a ticket under the current one.
    auto renewed = session_of(c.client.get());
    ASSERT_TRUE(SSL_SESSION_has_ticket(renewed.get()));
    const unsigned char *old_ticket = nullptr, *new_ticket = nullptr;
    std::size_t old_len = 0, new_len = 0;
    SSL_SESSION_get0_ticket(s.get(), &old_ticket, &old_len);
    SSL_SESSION_get0_ticket(renewed.get(), &new_ticket, &new_len);
    EXPECT_TRUE(old_len != new_len || std::memcmp(old_ticket, new_ticket, old_len) != 0);

    server->tickets()->advance_clock_for_test(std::chrono::minutes(61));
    EXPECT_FALSE(resumes(*server, client.get(), s2.get()));  // its key is two rotations old
    EXPECT_TRUE(resumes(*server, client.get(), renewed.get()));
}

TEST_P(ServerResumption, SessionCacheResumesWithTicketsOff) {
    auto cfg = listener({certs::pair("site")});
    cfg.session_tickets = false;
    cfg.session_cache_size = 100;
    auto server = build(cfg);
    EXPECT_FALSE(server->tickets());
    auto client = this->client();
    auto s = first_session(*server, client.get());
    ASSERT_TRUE(s);
    if (GetParam() == TLS1_2_VERSION) {
        EXPECT_FALSE(SSL_SESSION_has_ticket(s.get()));
    }
    EXPECT_TRUE(resumes(*server, client.get(), s.get()));

    cfg.session_cache_size = 0;  // neither tickets nor cache: nothing resumes
    auto none = build(cfg);
    auto s0 = first_session(*none, client.get());
    if (s0) {
        EXPECT_FALSE(resumes(*none, client.get(), s0.get()));
    }
}

INSTANTIATE_TEST_SUITE_P(Versions, ServerResumption, ::testing::Values(TLS1_3_VERSION, TLS1_2_VERSION),
                         [](const auto& info) { return info.param == TLS1_3_VERSION ? "Tls13" : "Tls12"; });

// Workers handshake on one context concurrently while keys rotate (run under ASan/UBSan;
// the rotation path is the one that writes).
TEST(ServerContext, ConcurrentHandshakesWhileTicketKeysRotate) {
    auto cfg = listener({certs::pair("site")});
    cfg.session_cache_size = 0;
    auto server = build(cfg);
    auto shared_client = testing::test_client_ctx();
    auto seed = first_session(*server, shared_client.get());
    std::atomic<int> failures{0}, resumed{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; ++t) {
        workers.emplace_back([&] {
            auto client = testing::test_client_ctx();
            session_ptr session(SSL_SESSION_dup(seed.get()));
            for (int i = 0; i < 15; ++i) {
                auto c = connect(*server, client.get(), "localhost", nullptr, session.get());
                if (!c.result.ok) ++failures;
                if (session_reused(c.client.get())) ++resumed;
                session = session_of(c.client.get());
            }
        });
    }
    for (int i = 0; i < 20; ++i) {
        server->tickets()->advance_clock_for_test(std::chrono::hours(13));
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (auto& w : workers) w.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(resumed.load(), 0);
}

config::listener_tls_config client_auth(config::client_auth_mode mode) {
    auto cfg = listener({certs::pair("site")});
    cfg.client_auth = mode;
    cfg.client_ca = certs::path("ca.pem");
    return cfg;
}

std::string fingerprint_of_file(const std::string& path) {
    auto chain = testing::ssl_ctx_ptr(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_use_certificate_chain_file(chain.get(), path.c_str());
    unsigned char md[32];
    unsigned int len = 0;
    X509_digest(SSL_CTX_get0_certificate(chain.get()), EVP_sha256(), md, &len);
    std::string hex;
    char buf[3];
    for (unsigned i = 0; i < len; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", md[i]);
        hex += buf;
    }
    return hex;
}

TEST(ServerContext, ClientAuthRequiredNeedsAValidCertificate) {
    auto server = build(client_auth(config::client_auth_mode::required));
    ASSERT_TRUE(server);
    for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        auto anonymous = testing::test_client_ctx();
        SSL_CTX_set_max_proto_version(anonymous.get(), version);
        auto c = connect(*server, anonymous.get(), "localhost");
        // With TLS 1.3 the client finishes first and learns of the refusal on its next read.
        EXPECT_FALSE(c.result.ok && SSL_is_init_finished(c.server.get()));
        EXPECT_FALSE(verified_peer(c.server.get()).present);

        auto with_cert = testing::test_client_ctx();
        SSL_CTX_set_max_proto_version(with_cert.get(), version);
        SSL_CTX_use_certificate_chain_file(with_cert.get(), certs::path("client.pem").c_str());
        SSL_CTX_use_PrivateKey_file(with_cert.get(), certs::path("client.key").c_str(), SSL_FILETYPE_PEM);
        auto ok = connect(*server, with_cert.get(), "localhost");
        ASSERT_TRUE(ok.result.ok) << ok.result.client_error << " / " << ok.result.server_error;
        const auto peer = verified_peer(ok.server.get());
        EXPECT_TRUE(peer.present);
        EXPECT_EQ(peer.subject, "O=Sentinel Tests,CN=test-client");
        EXPECT_EQ(peer.sha256, fingerprint_of_file(certs::path("client.pem")));
        EXPECT_EQ(peer.sha256.size(), 64u);

        // A certificate from another CA is refused.
        auto foreign = testing::test_client_ctx();
        SSL_CTX_set_max_proto_version(foreign.get(), version);
        SSL_CTX_use_certificate_file(foreign.get(), certs::path("ca.pem").c_str(), SSL_FILETYPE_PEM);
        SSL_CTX_use_PrivateKey_file(foreign.get(), certs::path("ca.key").c_str(), SSL_FILETYPE_PEM);
        auto refused = connect(*server, foreign.get(), "localhost");
        EXPECT_FALSE(refused.result.ok && SSL_is_init_finished(refused.server.get()) &&
                     verified_peer(refused.server.get()).present);
    }
}

TEST(ServerContext, ClientAuthOptionalLetsAnonymousClientsIn) {
    auto server = build(client_auth(config::client_auth_mode::optional));
    auto anonymous = testing::test_client_ctx();
    auto c = connect(*server, anonymous.get(), "localhost");
    ASSERT_TRUE(c.result.ok) << c.result.server_error;
    EXPECT_FALSE(verified_peer(c.server.get()).present);
    // And the client is told which CA to pick a certificate for.
    STACK_OF(X509_NAME)* names = SSL_get_client_CA_list(c.client.get());
    ASSERT_NE(names, nullptr);
    EXPECT_EQ(sk_X509_NAME_num(names), 1);
}

std::vector<unsigned char> file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<unsigned char> stapled(const conn& c) {
    const unsigned char* data = nullptr;
    const long len = SSL_get_tlsext_status_ocsp_resp(c.client.get(), &data);
    if (len <= 0 || data == nullptr) return {};
    return {data, data + len};
}

TEST(ServerContext, OcspResponseIsStapledForTheCertificateItBelongsTo) {
    auto site = certs::pair("site");
    site.ocsp = certs::path("site.ocsp");
    auto server = build(listener({site, certs::pair("site-rsa"), certs::pair("other")}));
    ASSERT_TRUE(server);
    const auto expected = file_bytes(certs::path("site.ocsp"));
    auto client = testing::test_client_ctx();
    auto ask = [](SSL* ssl) { SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp); };
    for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        SSL_CTX_set_max_proto_version(client.get(), version);
        auto c = connect(*server, client.get(), "localhost", ask);
        ASSERT_TRUE(c.result.ok);
        EXPECT_EQ(stapled(c), expected);
        // The RSA certificate for the same names has no response to staple.
        auto rsa = connect(*server, client.get(), "localhost", [&](SSL* ssl) {
            ask(ssl);
            SSL_set1_sigalgs_list(ssl, "rsa_pss_rsae_sha256:rsa_pkcs1_sha256");
        });
        ASSERT_TRUE(rsa.result.ok);
        EXPECT_TRUE(stapled(rsa).empty());
        auto other = connect(*server, client.get(), "other.test", ask);
        ASSERT_TRUE(other.result.ok);
        EXPECT_TRUE(stapled(other).empty());
    }
}

TEST(ServerContext, OcspFileMustBeAResponseForThatCertificate) {
    auto not_der = certs::pair("site");
    not_der.ocsp = certs::path("site.pem");
    EXPECT_NE(build_error(listener({not_der})).find("ocsp"), std::string::npos);
    auto wrong_cert = certs::pair("other");
    wrong_cert.ocsp = certs::path("site.ocsp");
    EXPECT_NE(build_error(listener({wrong_cert})).find("not for this certificate"), std::string::npos);
}

TEST(ServerContext, BuildErrorsNameTheFile) {
    auto missing = certs::pair("site");
    missing.key = certs::path("nope.key");
    EXPECT_NE(build_error(listener({missing})).find("nope.key"), std::string::npos);
    auto mismatched = certs::pair("site");
    mismatched.key = certs::path("other.key");
    EXPECT_NE(build_error(listener({mismatched})).find("other.key"), std::string::npos);
    EXPECT_FALSE(build_error(listener({})).empty());
}

TEST(ServerContext, FilesAreListedAndChangesDetected) {
    const std::string dir = certs::dir() + "/stamps-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    struct cleanup {
        std::string dir;
        ~cleanup() { std::filesystem::remove_all(dir); }
    } cleanup{dir};
    for (const char* f : {"site.pem", "site.key", "site.ocsp", "ca.pem"})
        std::filesystem::copy_file(certs::path(f), dir + "/" + f, std::filesystem::copy_options::overwrite_existing);
    auto cfg = listener({{dir + "/site.pem", dir + "/site.key", dir + "/site.ocsp"}});
    cfg.client_auth = config::client_auth_mode::optional;
    cfg.client_ca = dir + "/ca.pem";
    auto server = build(cfg);
    ASSERT_TRUE(server);
    std::vector<std::string> paths;
    for (const auto& f : server->files()) paths.push_back(f.path);
    EXPECT_EQ(paths, (std::vector<std::string>{dir + "/site.pem", dir + "/site.key", dir + "/site.ocsp", dir + "/ca.pem"}));
    EXPECT_FALSE(files_changed(server->files()));
    const auto later = std::filesystem::last_write_time(dir + "/site.key") + std::chrono::seconds(5);
    std::filesystem::last_write_time(dir + "/site.key", later);
    EXPECT_TRUE(files_changed(server->files()));
    std::filesystem::remove(dir + "/site.ocsp");
    auto files = server->files();
    files.erase(files.begin() + 1);
    EXPECT_TRUE(files_changed(files));  // a removed file counts as changed
}

}  // namespace
}  // namespace sentinel::tls
