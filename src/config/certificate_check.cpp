#include "config/certificate_check.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <memory>

namespace sentinel::config {

namespace {

struct file_closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;
using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

std::string openssl_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "no PEM data";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

}  // namespace

std::optional<std::string> check_certificate_pair(const std::string& certificate_path, const std::string& key_path) {
    ERR_clear_error();
    file_ptr cf(std::fopen(certificate_path.c_str(), "rb"));
    if (!cf) return "cannot open \"" + certificate_path + "\"";
    x509_ptr leaf(PEM_read_X509(cf.get(), nullptr, nullptr, nullptr), &X509_free);
    if (!leaf) return "\"" + certificate_path + "\" holds no PEM certificate (" + openssl_error() + ")";
    file_ptr kf(std::fopen(key_path.c_str(), "rb"));
    if (!kf) return "cannot open \"" + key_path + "\"";
    pkey_ptr key(PEM_read_PrivateKey(kf.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
    if (!key) return "\"" + key_path + "\" holds no PEM private key (" + openssl_error() + ")";
    if (X509_check_private_key(leaf.get(), key.get()) != 1) {
        ERR_clear_error();
        return "the key in \"" + key_path + "\" does not match the certificate in \"" + certificate_path + "\"";
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf.get())) <= 0)
        return "the certificate in \"" + certificate_path + "\" has expired";
    if (X509_cmp_current_time(X509_get0_notBefore(leaf.get())) >= 0)
        return "the certificate in \"" + certificate_path + "\" is not valid yet";
    return std::nullopt;
}

std::optional<std::string> check_ca_bundle(const std::string& path) {
    ERR_clear_error();
    file_ptr f(std::fopen(path.c_str(), "rb"));
    if (!f) return "cannot open \"" + path + "\"";
    x509_ptr first(PEM_read_X509(f.get(), nullptr, nullptr, nullptr), &X509_free);
    if (!first) return "\"" + path + "\" holds no PEM certificate (" + openssl_error() + ")";
    return std::nullopt;
}

}  // namespace sentinel::config
