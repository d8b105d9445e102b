// Helpers shared by server_context (server_context.cpp) and client_context
// (client_context.cpp), and the per-connection facts (peer certificate, version, reuse).
#include "tls/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "tls/openssl_util.hpp"

namespace sentinel::tls {

namespace detail {

std::string openssl_error(std::string_view fallback) {
    const unsigned long first = ERR_get_error();
    ERR_clear_error();
    if (first == 0) return std::string(fallback);
    const char* reason = ERR_reason_error_string(first);
    if (reason != nullptr) return reason;
    char buf[256];
    ERR_error_string_n(first, buf, sizeof buf);
    return buf;
}

namespace {

bool mtime_of(const std::string& path, std::int64_t& mtime_ns) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return false;
    mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    return true;
}

}  // namespace

bool stamp_file(const std::string& path, std::vector<file_stamp>& files, std::string& error) {
    file_stamp stamp{path, 0};
    if (!mtime_of(path, stamp.mtime_ns)) {
        error = path + ": " + std::strerror(errno);
        return false;
    }
    // The same file may serve twice (a CA bundle that is also the chain): one stamp is enough.
    for (const auto& f : files)
        if (f.path == path) return true;
    files.push_back(std::move(stamp));
    return true;
}

std::vector<x509_ptr> read_pem_certificates(const std::string& path, std::string& error) {
    std::vector<x509_ptr> out;
    bio_ptr bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) {
        error = path + ": " + openssl_error("cannot open");
        return out;
    }
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, refuse_password, nullptr)) out.emplace_back(cert);
    // Reading stops with "no start line" at the end of the file; that is not an error.
    ERR_clear_error();
    if (out.empty()) error = path + ": no PEM certificate";
    return out;
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::vector<std::string> certificate_names(X509* cert, bool with_ips) {
    std::vector<std::string> names;
    bool had_dns = false;
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (sans != nullptr) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
            if (gn->type == GEN_DNS) {
                const ASN1_IA5STRING* s = gn->d.dNSName;
                names.push_back(lowercase(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                                           static_cast<std::size_t>(ASN1_STRING_length(s)))));
                had_dns = true;
            } else if (gn->type == GEN_IPADD && with_ips) {
                // Rendered the way users write addresses: "127.0.0.1", "::1".
                const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
                const int len = ASN1_STRING_length(ip);
                char text[INET6_ADDRSTRLEN] = {};
                if ((len == 4 || len == 16) &&
                    inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text, sizeof text) != nullptr)
                    names.emplace_back(text);
            }
        }
        GENERAL_NAMES_free(sans);
    }
    if (!had_dns) {
        X509_NAME* subject = X509_get_subject_name(cert);
        const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        if (idx >= 0) {
            const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
            unsigned char* utf8 = nullptr;
            const int len = ASN1_STRING_to_UTF8(&utf8, cn);
            if (len >= 0) {
                names.insert(names.begin(), lowercase(std::string_view(reinterpret_cast<char*>(utf8), len)));
                OPENSSL_free(utf8);
            }
        }
    }
    return names;
}

int refuse_password(char*, int, int, void*) { return 0; }

}  // namespace detail

bool files_changed(const std::vector<file_stamp>& files) {
    for (const auto& f : files) {
        std::int64_t now = 0;
        if (!detail::mtime_of(f.path, now) || now != f.mtime_ns) return true;
    }
    return false;
}

peer_certificate verified_peer(SSL* ssl) {
    peer_certificate out;
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return out;
    // A server that did not ask for a certificate reports X509_V_OK too, but then there is
    // no peer certificate; with one, OK means it chained to the configured CA.
    detail::bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) {
        ERR_clear_error();
        return out;
    }
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    out.subject.assign(data, static_cast<std::size_t>(len));

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &md_len) != 1) {
        ERR_clear_error();
        return peer_certificate{};
    }
    static constexpr char hex[] = "0123456789abcdef";
    out.sha256.reserve(md_len * 2);
    for (unsigned int i = 0; i < md_len; ++i) {
        out.sha256.push_back(hex[md[i] >> 4]);
        out.sha256.push_back(hex[md[i] & 0xf]);
    }
    out.present = true;
    return out;
}

std::string_view version_name(SSL* ssl) { return SSL_get_version(ssl); }

bool session_reused(SSL* ssl) { return SSL_session_reused(ssl) == 1; }

bool selected_h2(SSL* ssl) {
    const unsigned char* alpn = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &len);
    return len == 2 && alpn[0] == 'h' && alpn[1] == '2';
}

void keep_session_on_close(SSL* ssl) {
    // SSL_free removes the session from the cache (and marks it non-resumable) unless the
    // connection looks shut down; claim it was, without sending anything.
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
}

}  // namespace sentinel::tls
