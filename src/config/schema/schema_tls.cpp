// The TLS parts of the schema: a listener's `tls` block and an upstream's `tls` block, with
// the load-time certificate checks that make a bad certificate a positioned config error.
#include "config/certificate_check.hpp"
#include "config/schema/builders.hpp"

namespace sentinel::config::schema::builders {

namespace {

// Certificates are checked here (parse, key match, validity) so a bad one is reported at
// its `certificate` node.
void check_certificates(check_context& ctx, const kdl::node& node, const std::vector<certificate_config>& certs) {
    std::size_t i = 0;
    for (const auto& c : node.children) {
        if (c.name != "certificate") continue;
        if (i >= certs.size()) break;
        const auto& cert = certs[i++];
        if (c.find_property("key") == nullptr) {
            ctx.error(c.pos, "`certificate` needs its private key: certificate \"cert.pem\" key=\"key.pem\"");
            continue;
        }
        if (cert.certificate.empty() || cert.key.empty()) continue;  // a path error was reported
        if (auto error = check_certificate_pair(cert.certificate, cert.key)) ctx.error(c.pos, *error);
    }
}

void finish_listener_tls(check_context& ctx, void* target, const kdl::node& node) {
    auto& t = *static_cast<listener_tls_config*>(target);
    if (t.certificates.empty())
        ctx.error(node.pos, "`tls` needs at least one `certificate \"cert.pem\" key=\"key.pem\"`");
    check_certificates(ctx, node, t.certificates);
    if (t.min_version > t.max_version)
        ctx.error(node.pos, "tls min-version is above max-version");
    if (t.client_auth != client_auth_mode::none && !t.client_ca) {
        const kdl::node* ca = child_named(node, "client-auth");
        ctx.error(ca ? ca->pos : node.pos, "`client-auth` needs `client-ca \"ca.pem\"` to verify client certificates");
    }
    if (t.client_ca && t.client_auth == client_auth_mode::none) {
        const kdl::node* ca = child_named(node, "client-ca");
        ctx.error(ca->pos, "`client-ca` has no effect with client-auth \"none\"");
    }
    if (t.client_ca) {
        if (auto error = check_ca_bundle(*t.client_ca)) ctx.error(child_named(node, "client-ca")->pos, *error);
    }
}

void finish_upstream_tls(check_context& ctx, void* target, const kdl::node& node) {
    auto& t = *static_cast<upstream_tls_config*>(target);
    if (t.client_certificate) {
        std::vector<certificate_config> one{*t.client_certificate};
        check_certificates(ctx, node, one);
    }
    if (t.ca) {
        if (auto error = check_ca_bundle(*t.ca)) ctx.error(child_named(node, "ca")->pos, *error);
    }
    if (t.insecure_skip_verify && t.ca) {
        ctx.error(child_named(node, "insecure-skip-verify")->pos,
                  "`insecure-skip-verify #true` and `ca` contradict each other; remove one");
    }
}

certificate_config certificate_from(args_view a) {
    certificate_config c;
    c.certificate = a[0].str;
    if (a[1].present) c.key = a[1].str;
    if (a.size() > 2 && a[2].present) c.ocsp = a[2].str;
    return c;
}

}  // namespace

node_spec listener_tls_block() {
    auto versions = std::vector<std::string_view>{"1.2", "1.3"};
    auto security = block("security-headers", &enter_member<&listener_tls_config::security_headers>, {
        key("enabled", boolean(), set<&security_headers_config::enabled>())
            .def(kbool(true))
            .with_doc("Add the headers below to every response on this listener (a route can turn them off with `security-headers #false`)."),
        key("hsts-max-age", duration_v(0), set<&security_headers_config::hsts_max_age>())
            .def(kstr("365d"))
            .with_doc("max-age of Strict-Transport-Security; \"0s\" = no HSTS header."),
        key("hsts-include-subdomains", boolean(), set<&security_headers_config::hsts_include_subdomains>())
            .def(kbool(false))
            .with_doc("Add includeSubDomains to Strict-Transport-Security."),
        key("content-type-options", header_value_v(), set<&security_headers_config::content_type_options>())
            .def(kstr("nosniff"))
            .with_doc("X-Content-Type-Options value."),
        key("referrer-policy", header_value_v(), set<&security_headers_config::referrer_policy>())
            .def(kstr("strict-origin-when-cross-origin"))
            .with_doc("Referrer-Policy value."),
        key("frame-options", header_value_v(), set<&security_headers_config::frame_options>())
            .def(kstr("DENY"))
            .with_doc("X-Frame-Options value."),
    }).implied().with_doc("Security headers added to responses on this TLS listener unless the upstream already sent them.");

    return block("tls", &enter_member<&listener_config::tls>, {
        key("certificate", input_path("certificate"), [](void* t, args_view a) {
            static_cast<listener_tls_config*>(t)->certificates.push_back(certificate_from(a));
        }).prop("key", input_path("key"), "PEM private key of the certificate (required)")
            .prop("ocsp", input_path("ocsp"), "DER OCSP response to staple (re-read on reload)")
            .req()
            .repeat()
            .with_doc("A PEM certificate chain (leaf first). With several, the client's SNI picks one by the certificate's own names (exact, then wildcard); RSA and ECDSA certificates for the same names are both offered and the client's capabilities pick. The first is the default."),
        key("min-version", enumeration(versions, "version"), set<&listener_tls_config::min_version>())
            .def(kstr("1.2"))
            .with_doc("Lowest TLS version accepted. TLS 1.0 and 1.1 are never offered."),
        key("max-version", enumeration(versions, "version"), set<&listener_tls_config::max_version>())
            .def(kstr("1.3"))
            .with_doc("Highest TLS version accepted."),
        key("ciphers", string("list"), set<&listener_tls_config::ciphers>())
            .def_doc("ECDHE with AES-GCM or ChaCha20-Poly1305")
            .with_doc("TLS 1.2 cipher list (OpenSSL syntax). The default allows only forward-secret AEAD suites."),
        key("cipher-suites", string("list"), set<&listener_tls_config::cipher_suites>())
            .def_doc("OpenSSL's TLS 1.3 default")
            .with_doc("TLS 1.3 cipher suites (OpenSSL syntax, colon-separated)."),
        key("groups", string("group"), set<&listener_tls_config::groups>())
            .many()
            .def_doc("\"X25519\" \"P-256\" \"P-384\"")
            .with_doc("Key-exchange groups, in preference order."),
        key("session-tickets", boolean(), set<&listener_tls_config::session_tickets>())
            .def(kbool(true))
            .with_doc("Offer session tickets (stateless resumption)."),
        key("ticket-key-rotation", duration_v(60'000), set<&listener_tls_config::ticket_key_rotation>())
            .def(kstr("12h"))
            .with_doc("A new ticket key is made this often; tickets under the previous key are still accepted for one more period."),
        key("session-cache-size", integer(0, 10'000'000), set<&listener_tls_config::session_cache_size>())
            .def(kint(20480))
            .with_doc("Sessions kept for ID-based resumption (per listener); 0 = none."),
        key("session-timeout", duration_v(1000), set<&listener_tls_config::session_timeout>())
            .def(kstr("5m"))
            .with_doc("How long a session can be resumed."),
        key("client-auth", enumeration({"none", "optional", "required"}, "mode"), set<&listener_tls_config::client_auth>())
            .def(kstr("none"))
            .with_doc("Ask clients for a certificate: `optional` verifies one when sent; `required` fails the handshake without a valid one."),
        key("client-ca", input_path("ca"), set<&listener_tls_config::client_ca>())
            .def_doc("none")
            .with_doc("PEM CA bundle that client certificates must chain to."),
        security,
    }).on_finish(&finish_listener_tls)
      .with_doc("TLS settings of a `protocol \"https\"` listener.");
}

node_spec upstream_tls_block() {
    return block("tls", &enter_member<&upstream_config::tls>, {
        key("ca", input_path("ca"), set<&upstream_tls_config::ca>())
            .def_doc("the system CA bundle")
            .with_doc("PEM CA bundle the endpoints' certificates must chain to."),
        key("sni", header_value_v(), set<&upstream_tls_config::sni>())
            .def_doc("the endpoint's host")
            .with_doc("Server name sent in SNI and verified against the certificate; without it the endpoint's host (an IP endpoint against an IP SAN)."),
        key("certificate", input_path("certificate"), [](void* t, args_view a) {
            static_cast<upstream_tls_config*>(t)->client_certificate = certificate_from(a);
        }).prop("key", input_path("key"), "PEM private key of the certificate (required)")
            .def_doc("none")
            .with_doc("Client certificate (PEM chain) presented to endpoints that ask for one (mTLS)."),
        key("insecure-skip-verify", boolean(), set<&upstream_tls_config::insecure_skip_verify>())
            .def(kbool(false))
            .with_doc("Do not verify the endpoints' certificates. Logged as a warning at every load."),
        key("min-version", enumeration({"1.2", "1.3"}, "version"), set<&upstream_tls_config::min_version>())
            .def(kstr("1.2"))
            .with_doc("Lowest TLS version used towards the endpoints."),
    }).optional_children().on_finish(&finish_upstream_tls)
      .with_doc("Connect to this upstream's endpoints with TLS; the certificate is verified by default.");
}

}  // namespace sentinel::config::schema::builders
