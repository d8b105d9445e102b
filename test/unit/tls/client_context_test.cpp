// client_context against an in-memory server_context: verification (CA, names, IPs),
// SNI, mTLS, ALPN and per-endpoint session reuse for TLS 1.3 and 1.2.
#include <openssl/ssl.h>

#include "tls/tls_context.hpp"
#include "tls_test_support.hpp"

namespace sentinel::tls {
namespace {

using testing::certs;
using testing::handshake;
using testing::ssl_ptr;

std::shared_ptr<server_context> make_server(config::tls_version max = config::tls_version::tls1_3,
                                            config::client_auth_mode auth = config::client_auth_mode::none) {
    config::listener_tls_config cfg;
    cfg.certificates = {certs::pair("site"), certs::pair("other")};
    cfg.max_version = max;
    cfg.client_auth = auth;
    if (auth != config::client_auth_mode::none) cfg.client_ca = certs::path("ca.pem");
    std::string error;
    auto ctx = server_context::build(cfg, false, nullptr, error);
    EXPECT_TRUE(ctx) << error;
    return ctx;
}

std::shared_ptr<client_context> make_client(config::upstream_tls_config cfg) {
    std::string error;
    auto ctx = client_context::build(cfg, false, error);
    EXPECT_TRUE(ctx) << error;
    return ctx;
}

config::upstream_tls_config with_test_ca() {
    config::upstream_tls_config cfg;
    cfg.ca = certs::path("ca.pem");
    return cfg;
}

struct upstream_conn {
    ssl_ptr client;
    ssl_ptr server;
    testing::handshake_result result;
    std::string prepare_error;
};

upstream_conn connect(const client_context& client, const server_context& server, std::string_view host,
                      std::string_view key = "endpoint-a") {
    upstream_conn c;
    c.client.reset(SSL_new(client.native()));
    c.server.reset(SSL_new(server.native()));
    if (!client.prepare(c.client.get(), host, key, c.prepare_error)) return c;
    c.result = handshake(c.client.get(), c.server.get());
    if (c.result.ok) client.remember(c.client.get(), key);
    return c;
}

TEST(ClientContext, VerifiesAgainstTheConfiguredCa) {
    auto server = make_server();
    auto client = make_client(with_test_ca());
    auto c = connect(*client, *server, "localhost");
    ASSERT_TRUE(c.result.ok) << c.result.client_error;
    EXPECT_EQ(SSL_get_verify_result(c.client.get()), X509_V_OK);
    EXPECT_EQ(client_context::verify_error(c.client.get(), "localhost"), "");
    EXPECT_STREQ(SSL_get_servername(c.server.get(), TLSEXT_NAMETYPE_host_name), "localhost");
    const auto peer = verified_peer(c.client.get());
    EXPECT_TRUE(peer.present);
    EXPECT_EQ(peer.subject, "CN=localhost");
    EXPECT_EQ(client->files().size(), 1u);

    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(c.client.get(), &alpn, &alpn_len);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(alpn), alpn_len), "http/1.1");

    // SNI picks the other certificate and the name still verifies.
    auto other = connect(*client, *server, "other.test");
    ASSERT_TRUE(other.result.ok) << other.result.client_error;
    EXPECT_EQ(verified_peer(other.client.get()).subject, "CN=other.test");
}

TEST(ClientContext, SystemBundleDoesNotKnowTheTestCa) {
    auto server = make_server();
    auto client = make_client(config::upstream_tls_config{});
    auto c = connect(*client, *server, "localhost");
    EXPECT_FALSE(c.result.ok);
    // The test chain carries its self-signed root, so that is what OpenSSL complains about.
    const auto why = client_context::verify_error(c.client.get(), "localhost");
    EXPECT_TRUE(why == "self-signed certificate in certificate chain" ||
                why == "unable to get local issuer certificate")
        << why;
}

TEST(ClientContext, NameMismatchSaysWhatWasExpectedAndWhatTheCertificateIsFor) {
    auto server = make_server();
    auto client = make_client(with_test_ca());
    for (int i = 0; i < 2; ++i) {
        auto c = connect(*client, *server, "api.internal");
        EXPECT_FALSE(c.result.ok);
        // The expected name may come from the caller or from what prepare() set.
        const auto why = client_context::verify_error(c.client.get(), i == 0 ? "api.internal" : "");
        EXPECT_NE(why.find("hostname mismatch: expected api.internal"), std::string::npos) << why;
        EXPECT_NE(why.find("certificate is for localhost, *.example.test, example.test, 127.0.0.1, ::1"),
                  std::string::npos)
            << why;
    }
    // A wildcard covers one label only.
    EXPECT_TRUE(connect(*client, *server, "api.example.test").result.ok);
    EXPECT_FALSE(connect(*client, *server, "a.b.example.test").result.ok);
}

TEST(ClientContext, IpEndpointsVerifyAgainstIpSansAndSendNoSni) {
    auto server = make_server();
    auto client = make_client(with_test_ca());
    for (const char* ip : {"127.0.0.1", "::1", "[::1]"}) {
        auto c = connect(*client, *server, ip);
        ASSERT_TRUE(c.result.ok) << ip << ": " << c.result.client_error;
        EXPECT_EQ(SSL_get_servername(c.server.get(), TLSEXT_NAMETYPE_host_name), nullptr) << ip;
    }
    auto wrong = connect(*client, *server, "10.0.0.1");
    EXPECT_FALSE(wrong.result.ok);
    EXPECT_EQ(SSL_get_verify_result(wrong.client.get()), X509_V_ERR_IP_ADDRESS_MISMATCH);
    for (const char* expected : {"10.0.0.1", ""}) {
        const auto why = client_context::verify_error(wrong.client.get(), expected);
        EXPECT_NE(why.find("IP address mismatch: expected 10.0.0.1, certificate is for localhost"), std::string::npos)
            << why;
    }
}

TEST(ClientContext, ConfiguredSniIsSentAndVerifiedInsteadOfTheHost) {
    auto server = make_server();
    auto cfg = with_test_ca();
    cfg.sni = "other.test";
    auto client = make_client(cfg);
    auto c = connect(*client, *server, "127.0.0.1");
    ASSERT_TRUE(c.result.ok) << c.result.client_error;
    EXPECT_STREQ(SSL_get_servername(c.server.get(), TLSEXT_NAMETYPE_host_name), "other.test");
    EXPECT_EQ(verified_peer(c.client.get()).subject, "CN=other.test");
}

TEST(ClientContext, InsecureSkipVerifyAcceptsAnything) {
    auto server = make_server();
    config::upstream_tls_config cfg;
    cfg.insecure_skip_verify = true;
    auto client = make_client(cfg);
    auto c = connect(*client, *server, "wrong.name");
    EXPECT_TRUE(c.result.ok) << c.result.client_error;
}

TEST(ClientContext, ExpiredCertificateIsReported) {
    config::listener_tls_config cfg;
    cfg.certificates = {certs::pair("expired")};
    std::string error;
    auto server = server_context::build(cfg, false, nullptr, error);  // the config check refuses it, not build
    ASSERT_TRUE(server) << error;
    auto client = make_client(with_test_ca());
    upstream_conn c;
    c.client.reset(SSL_new(client->native()));
    c.server.reset(SSL_new(server->native()));
    ASSERT_TRUE(client->prepare(c.client.get(), "localhost", "k", c.prepare_error));
    // Only the dates matter here, whatever names the expired certificate carries.
    X509_VERIFY_PARAM_set1_host(SSL_get0_param(c.client.get()), nullptr, 0);
    c.result = handshake(c.client.get(), c.server.get());
    EXPECT_FALSE(c.result.ok);
    EXPECT_EQ(client_context::verify_error(c.client.get(), "localhost"), "certificate has expired");
}

TEST(ClientContext, ClientCertificateIsPresentedForMutualTls) {
    auto server = make_server(config::tls_version::tls1_3, config::client_auth_mode::required);
    auto without = make_client(with_test_ca());
    auto refused = connect(*without, *server, "localhost");
    EXPECT_FALSE(refused.result.ok && SSL_is_init_finished(refused.server.get()));

    auto cfg = with_test_ca();
    cfg.client_certificate = certs::pair("client");
    auto client = make_client(cfg);
    EXPECT_EQ(client->files().size(), 3u);
    auto c = connect(*client, *server, "localhost");
    ASSERT_TRUE(c.result.ok) << c.result.client_error << " / " << c.result.server_error;
    EXPECT_EQ(verified_peer(c.server.get()).subject, "O=Sentinel Tests,CN=test-client");
}

class UpstreamResumption : public ::testing::TestWithParam<config::tls_version> {};

TEST_P(UpstreamResumption, PooledReconnectsResumePerEndpoint) {
    auto server = make_server(GetParam());
    auto client = make_client(with_test_ca());
    auto first = connect(*client, *server, "localhost", "10.0.0.1:443");
    ASSERT_TRUE(first.result.ok) << first.result.client_error;
    EXPECT_FALSE(session_reused(first.client.get()));
    EXPECT_EQ(version_name(first.client.get()), GetParam() == config::tls_version::tls1_3 ? "TLSv1.3" : "TLSv1.2");

    auto second = connect(*client, *server, "localhost", "10.0.0.1:443");
    ASSERT_TRUE(second.result.ok);
    EXPECT_TRUE(session_reused(second.client.get()));
    EXPECT_TRUE(session_reused(second.server.get()));
    // Still verified: a resumed session keeps its peer certificate and result.
    EXPECT_TRUE(verified_peer(second.client.get()).present);

    auto third = connect(*client, *server, "localhost", "10.0.0.1:443");
    EXPECT_TRUE(session_reused(third.client.get()));

    auto other_endpoint = connect(*client, *server, "localhost", "10.0.0.2:443");
    ASSERT_TRUE(other_endpoint.result.ok);
    EXPECT_FALSE(session_reused(other_endpoint.client.get()));
}

TEST_P(UpstreamResumption, SessionsComeFromTheCallbackWithoutRemember) {
    auto server = make_server(GetParam());
    auto client = make_client(with_test_ca());
    for (int i = 0; i < 2; ++i) {
        ssl_ptr c(SSL_new(client->native()));
        ssl_ptr s(SSL_new(server->native()));
        std::string error;
        ASSERT_TRUE(client->prepare(c.get(), "localhost", "k", error)) << error;
        ASSERT_TRUE(handshake(c.get(), s.get()).ok);
        EXPECT_EQ(session_reused(c.get()), i == 1);
    }
}

INSTANTIATE_TEST_SUITE_P(Versions, UpstreamResumption,
                         ::testing::Values(config::tls_version::tls1_3, config::tls_version::tls1_2),
                         [](const auto& info) { return info.param == config::tls_version::tls1_3 ? "Tls13" : "Tls12"; });

TEST(ClientContext, MinVersionIsHonoured) {
    auto server = make_server(config::tls_version::tls1_2);
    auto cfg = with_test_ca();
    cfg.min_version = config::tls_version::tls1_3;
    auto client = make_client(cfg);
    EXPECT_FALSE(connect(*client, *server, "localhost").result.ok);
}

TEST(ClientContext, BadFilesAreBuildErrors) {
    auto cfg = with_test_ca();
    cfg.ca = certs::path("missing.pem");
    std::string error;
    EXPECT_FALSE(client_context::build(cfg, false, error));
    EXPECT_NE(error.find("missing.pem"), std::string::npos);
    cfg = with_test_ca();
    cfg.client_certificate = config::certificate_config{certs::path("client.pem"), certs::path("site.key"), {}};
    error.clear();
    EXPECT_FALSE(client_context::build(cfg, false, error));
    EXPECT_NE(error.find("site.key"), std::string::npos);
}

}  // namespace
}  // namespace sentinel::tls
