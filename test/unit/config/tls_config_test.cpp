// TLS settings: bad certificates are config errors at the `certificate` node, and the
// combinations that would silently do nothing are refused.
#include <gtest/gtest.h>

#include <cstdlib>

#include "test_support.hpp"

namespace sentinel::config {
namespace {

using testing::dump;
using testing::has_error;
using testing::load;
using testing::temp_dir;

class TlsConfig : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new temp_dir();
        const std::string cmd = std::string("sh ") + SENTINEL_SOURCE_DIR + "/test/support/make-certs.sh " + dir_->path();
        ASSERT_EQ(std::system(cmd.c_str()), 0);
    }
    static void TearDownTestSuite() { delete dir_; }
    static std::string cert(const std::string& name) { return dir_->path() + "/" + name; }
    static std::string listener(const std::string& tls_body, const std::string& protocol = "https") {
        return "listeners { listener \"tls\" { listen \"127.0.0.1:0\"; protocol \"" + protocol + "\"\n" + tls_body + "\n} }";
    }
    static inline temp_dir* dir_ = nullptr;
};

TEST_F(TlsConfig, ValidListenerMapsEverySetting) {
    auto r = load(listener("tls { certificate \"" + cert("site.pem") + "\" key=\"" + cert("site.key") + "\" ocsp=\"" +
                           cert("site.ocsp") + "\"\ncertificate \"" + cert("site-rsa.pem") + "\" key=\"" +
                           cert("site-rsa.key") + "\"\nmin-version \"1.3\"; client-auth \"required\"; client-ca \"" +
                           cert("ca.pem") + "\"; security-headers { hsts-max-age \"1d\"; } }"));
    ASSERT_TRUE(r.ok()) << dump(r);
    const auto& t = *r.cfg->listeners[0].tls;
    ASSERT_EQ(t.certificates.size(), 2u);
    EXPECT_EQ(t.certificates[0].key, cert("site.key"));
    EXPECT_EQ(*t.certificates[0].ocsp, cert("site.ocsp"));
    EXPECT_FALSE(t.certificates[1].ocsp);
    EXPECT_EQ(t.min_version, tls_version::tls1_3);
    EXPECT_EQ(t.client_auth, client_auth_mode::required);
    EXPECT_EQ(t.security_headers.hsts_max_age, std::chrono::hours(24));
}

TEST_F(TlsConfig, CertificateErrorsPointAtTheNode) {
    EXPECT_TRUE(has_error(load(listener("tls { certificate \"" + cert("site.pem") + "\" key=\"" + cert("other.key") + "\" }")),
                          "does not match the certificate", 2, 7));
    EXPECT_TRUE(has_error(load(listener("tls { certificate \"" + cert("expired.pem") + "\" key=\"" + cert("expired.key") + "\" }")),
                          "has expired", 2, 7));
    EXPECT_TRUE(has_error(load(listener("tls { certificate \"" + cert("site.pem") + "\" }")),
                          "`certificate` needs its private key", 2, 7));
    EXPECT_TRUE(has_error(load(listener("tls { certificate \"" + cert("nope.pem") + "\" key=\"" + cert("site.key") + "\" }")),
                          "does not exist", 2, 19));
    EXPECT_TRUE(has_error(load(listener("tls { certificate \"" + cert("ca.srl") + "\" key=\"" + cert("site.key") + "\" }")),
                          "holds no PEM certificate", 2, 7));
}

TEST_F(TlsConfig, ProtocolAndTlsMustAgree) {
    EXPECT_TRUE(has_error(load(listener("")), "has protocol \"https\" but no `tls` block", 1, 13));
    EXPECT_TRUE(has_error(load(listener("tls { certificate \"" + cert("site.pem") + "\" key=\"" + cert("site.key") + "\" }", "http")),
                          "`tls` needs protocol \"https\"", 2, 1));
    EXPECT_TRUE(has_error(load(listener("tls { certificate \"" + cert("site.pem") + "\" key=\"" + cert("site.key") +
                                        "\"; client-auth \"required\" }")),
                          "`client-auth` needs `client-ca", 2, 102));
    EXPECT_TRUE(has_error(load(listener("tls { certificate \"" + cert("site.pem") + "\" key=\"" + cert("site.key") +
                                        "\"; min-version \"1.3\"; max-version \"1.2\" }")),
                          "min-version is above max-version", 2, 1));
}

TEST_F(TlsConfig, UpstreamTls) {
    auto r = load("upstreams { upstream \"u\" { endpoint \"127.0.0.1:1\"; tls { ca \"" + cert("ca.pem") +
                  "\"; sni \"api.internal\"; certificate \"" + cert("client.pem") + "\" key=\"" + cert("client.key") + "\" } } }");
    ASSERT_TRUE(r.ok()) << dump(r);
    const auto& t = *r.cfg->upstreams[0].tls;
    EXPECT_EQ(*t.sni, "api.internal");
    EXPECT_EQ(t.client_certificate->key, cert("client.key"));
    auto bare = load("upstreams { upstream \"u\" { endpoint \"127.0.0.1:1\"; tls; } }");
    ASSERT_TRUE(bare.ok()) << dump(bare);
    EXPECT_TRUE(bare.cfg->upstreams[0].tls.has_value());
    EXPECT_FALSE(bare.cfg->upstreams[0].tls->insecure_skip_verify);
    EXPECT_TRUE(has_error(load("upstreams { upstream \"u\" { endpoint \"127.0.0.1:1\"; tls { ca \"" + cert("ca.pem") +
                               "\"; insecure-skip-verify #true; } } }"),
                          "contradict each other", 1, 99));
}

}  // namespace
}  // namespace sentinel::config
