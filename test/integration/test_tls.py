"""TLS listeners with real clients (`openssl s_client`, curl, Python's ssl): certificate
selection by SNI and by the client's signature algorithms, versions, ciphers, ALPN, session
resumption (also across a reload), client certificates and the headers carrying them
upstream, OCSP stapling, security headers, the HTTP→HTTPS redirect, certificate renewal
without a reload, plain HTTP on the TLS port and the handshake timeout.

The certificates come from test/support/make-certs.sh; which certificate a client got is
decided by the SHA-256 fingerprint of the leaf it received, not by its printed name."""

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import unittest

from harness import (SUPPORT, IntegrationTest, ResponseReader, connect, curl, free_port,
                     header_of, http_request, metric_value, render, request_bytes, wait_until)

MAKE_CERTS = os.path.join(SUPPORT, "make-certs.sh")
OPENSSL_ENV = dict(os.environ, OPENSSL_CONF="/dev/null")  # no distribution SECLEVEL overrides


def make_certs(directory):
    subprocess.run(["sh", MAKE_CERTS, directory], check=True, timeout=120,
                   stdin=subprocess.DEVNULL, capture_output=True)
    return directory


def pem_fingerprint(pem_text):
    """Lower-case hex SHA-256 of the first certificate in pem_text."""
    p = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
                       input=pem_text.encode(), capture_output=True, timeout=10, check=True)
    return p.stdout.decode().strip().split("=", 1)[1].replace(":", "").lower()


def file_fingerprint(path):
    with open(path) as f:
        return pem_fingerprint(f.read())


def rfc2253_subject(path):
    p = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253"],
                       capture_output=True, timeout=10, check=True)
    return p.stdout.decode().strip().split("=", 1)[1].strip()


class SClient:
    """One `openssl s_client` run: exit code, output, and what it saw."""

    def __init__(self, port, args, data=b"Q\n", timeout=10):
        argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, *args]
        try:
            p = subprocess.run(argv, input=data, capture_output=True, timeout=timeout,
                               env=OPENSSL_ENV)
            self.rc = p.returncode
            self.out = p.stdout.decode(errors="replace")
            self.err = p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            self.rc = -1
            self.out = (e.stdout or b"").decode(errors="replace")
            self.err = (e.stderr or b"").decode(errors="replace") + "\n[s_client timed out]"
        self.text = self.out + "\n" + self.err
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", self.out, re.S)
        self.leaf_pem = m.group(0) if m else None
        m = re.search(r"^(New|Reused), (TLSv[\d.]+|\(NONE\)), Cipher is (\S+)", self.out, re.M)
        self.state, self.version, self.cipher = (m.group(1), m.group(2), m.group(3)) if m else (None, None, None)
        m = re.search(r"^ALPN protocol: (\S+)", self.out, re.M)
        self.alpn = m.group(1) if m else None

    @property
    def established(self):
        return self.leaf_pem is not None and self.version not in (None, "(NONE)")

    def leaf_fingerprint(self):
        return pem_fingerprint(self.leaf_pem) if self.leaf_pem else None

    def __repr__(self):
        return "<s_client rc=%s state=%s version=%s cipher=%s\n%s>" % (
            self.rc, self.state, self.version, self.cipher, self.text[-2500:])


def https_context(ca, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


class TlsClient:
    """A keep-alive HTTP/1.1 client over TLS (Python's ssl)."""

    def __init__(self, port, ca, server_name="localhost", host_header="localhost", timeout=10.0):
        raw = connect(port, timeout=timeout)
        self.sock = https_context(ca).wrap_socket(raw, server_hostname=server_name)
        self.reader = ResponseReader(self.sock, timeout)
        self.host = host_header

    def request(self, method="GET", path="/", headers=()):
        self.sock.sendall(request_bytes(method, path, self.host, headers))
        return self.reader.read_response(method)

    def peer_fingerprint(self):
        return pem_fingerprint(ssl.DER_cert_to_PEM_cert(self.sock.getpeercert(binary_form=True)))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


TEMPLATE = r"""
admin { listen "127.0.0.1:@admin@" }
timeouts { client-header "1s" }
listeners {
    listener "plain" { listen "127.0.0.1:@plain@" }
    listener "tls" {
        listen "127.0.0.1:@tls@"
        protocol "https"
        tls {
            certificate "certs/site.pem" key="certs/site.key" ocsp="certs/site.ocsp"
            certificate "certs/site-rsa.pem" key="certs/site-rsa.key"
            certificate "certs/other.pem" key="certs/other.key"
@tls_extra@
        }
    }
    listener "tls13" {
        listen "127.0.0.1:@tls13@"; protocol "https"
        tls { certificate "certs/site.pem" key="certs/site.key"; min-version "1.3" }
    }
    listener "tls12" {
        listen "127.0.0.1:@tls12@"; protocol "https"
        tls { certificate "certs/site.pem" key="certs/site.key"; max-version "1.2" }
    }
    listener "noticket" {
        listen "127.0.0.1:@noticket@"; protocol "https"
        tls { certificate "certs/site.pem" key="certs/site.key"; session-tickets #false }
    }
    listener "mtls" {
        listen "127.0.0.1:@mtls@"; protocol "https"
        tls { certificate "certs/site.pem" key="certs/site.key"; client-auth "required"; client-ca "certs/ca.pem" }
    }
    listener "mtls-optional" {
        listen "127.0.0.1:@mtls_opt@"; protocol "https"
        tls { certificate "certs/site.pem" key="certs/site.key"; client-auth "optional"; client-ca "certs/ca.pem" }
    }
}
routes {
    route "to-https" { match { host "redirect.test" }; redirect 301 { scheme "https"; port @tls@ } }
    route "probe" { match { path "/" }; respond 200 { body "ok" } }
    route "nosec" { match { path-prefix "/nosec/" }; upstream "app"; security-headers #false }
    route "cert" {
        match { path-prefix "/cert/" }
        upstream "app"
        client-certificate-headers { subject "X-Client-Subject"; fingerprint "X-Client-Cert-SHA256" }
    }
    route "app" { match { path-prefix "/app/" "/response-headers" }; upstream "app" }
@extra_routes@
}
upstreams { upstream "app" { endpoint "@upstream@" } }
"""

SECURITY = {
    "strict-transport-security": "max-age=31536000",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
}


class TlsListenerTest(IntegrationTest):
    """One Sentinel with several TLS listeners, shared by the tests (metrics are compared
    before/after each step; the tests of a class run one at a time)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = make_certs(os.path.join(cls.class_workdir, "certs"))
        cls.ca = os.path.join(cls.certs, "ca.pem")
        cls.fp_site = file_fingerprint(os.path.join(cls.certs, "site.leaf"))
        cls.fp_rsa = file_fingerprint(os.path.join(cls.certs, "site-rsa.leaf"))
        cls.fp_other = file_fingerprint(os.path.join(cls.certs, "other.leaf"))
        cls.origin = cls.class_origin("app")
        cls.ports = {k: free_port() for k in ("admin", "plain", "tls", "tls13", "tls12",
                                              "noticket", "mtls", "mtls_opt")}
        cls.s = cls.class_sentinel(cls.config(), port=cls.ports["plain"],
                                   admin_port=cls.ports["admin"])

    @classmethod
    def config(cls, tls_extra="", extra_routes=""):
        return render(TEMPLATE, upstream=cls.origin.address, tls_extra=tls_extra,
                      extra_routes=extra_routes, **cls.ports)

    # -- helpers

    def sc(self, port_name, *args, **kw):
        return SClient(self.ports[port_name], args, **kw)

    def metric(self, name, **labels):
        return metric_value(self.s.metrics(), name, **labels)

    def failures(self, reason):
        return self.metric("sentinel_tls_handshake_failures_total", reason=reason)

    def wait_failure_counted(self, reason, before, what):
        wait_until(lambda: self.failures(reason) > before, 5,
                   what="sentinel_tls_handshake_failures_total{reason=%r} to count %s" % (reason, what))

    def https(self, port_name, path, *args, host="localhost"):
        port = self.ports[port_name]
        return curl("--cacert", self.ca, "--resolve", "%s:%d:127.0.0.1" % (host, port),
                    *args, "https://%s:%d%s" % (host, port, path), timeout=20)

    def request_text(self, path="/app/s_client", host="localhost"):
        return request_bytes("GET", path, host, [("Connection", "close")])

    # -- certificate selection -----------------------------------------------------------------

    def test_sni_selects_certificate(self):
        cases = [("other.test", self.fp_other), ("a.example.test", self.fp_site),
                 ("localhost", self.fp_site), ("example.test", self.fp_site),
                 ("unknown.invalid", self.fp_site)]
        for name, want in cases:
            r = self.sc("tls", "-servername", name)
            self.assertTrue(r.established, (name, r))
            self.assertEqual(r.leaf_fingerprint(), want, "SNI %s got the wrong certificate: %r" % (name, r))
        # No SNI at all: the first (default) certificate.
        r = self.sc("tls", "-noservername")
        self.assertTrue(r.established, r)
        self.assertEqual(r.leaf_fingerprint(), self.fp_site, r)
        # A real client verifies the name against the CA: curl to other.test works.
        rc, status, headers, body, err = self.https("tls", "/", host="other.test")
        self.assertEqual((rc, status, body), (0, 200, b"ok"), err)

    def test_rsa_or_ecdsa_by_signature_algorithms(self):
        # TLS 1.3 client that can only verify RSA-PSS signatures → the RSA certificate.
        r = self.sc("tls", "-servername", "localhost", "-sigalgs", "rsa_pss_rsae_sha256")
        self.assertTrue(r.established, r)
        self.assertEqual(r.leaf_fingerprint(), self.fp_rsa, r)
        # TLS 1.2 client with RSA PKCS#1 only.
        r = self.sc("tls", "-servername", "a.example.test", "-tls1_2", "-sigalgs", "RSA+SHA256")
        self.assertTrue(r.established, r)
        self.assertEqual(r.version, "TLSv1.2", r)
        self.assertEqual(r.leaf_fingerprint(), self.fp_rsa, r)
        self.assertIn("ECDHE-RSA-", r.cipher, r)
        # ECDSA-capable clients get the ECDSA one, in both versions.
        for args in ((), ("-tls1_2",), ("-sigalgs", "ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256")):
            r = self.sc("tls", "-servername", "localhost", *args)
            self.assertTrue(r.established, (args, r))
            self.assertEqual(r.leaf_fingerprint(), self.fp_site, (args, r))

    # -- versions, ciphers, ALPN ---------------------------------------------------------------

    def test_old_versions_refused_by_the_server(self):
        for flag in ("-tls1_1", "-tls1"):
            before = self.failures("protocol_version")
            # SECLEVEL=0 so it is the server, not the client library, that says no.
            r = self.sc("tls", flag, "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "localhost")
            self.assertFalse(r.established, (flag, r))
            self.assertNotEqual(r.rc, 0, r)
            self.assertRegex(r.text, r"alert protocol version", (flag, r))
            self.wait_failure_counted("protocol_version", before, flag)

    def test_tls12_and_tls13_by_default(self):
        before12 = self.metric("sentinel_tls_handshakes_total", version="TLSv1.2")
        r = self.sc("tls", "-tls1_2", "-servername", "localhost")
        self.assertTrue(r.established, r)
        self.assertEqual(r.version, "TLSv1.2", r)
        self.assertRegex(r.cipher, r"^ECDHE-ECDSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$", r)
        wait_until(lambda: self.metric("sentinel_tls_handshakes_total", version="TLSv1.2") > before12,
                   5, what="the TLSv1.2 handshake to be counted")
        r = self.sc("tls", "-servername", "localhost")
        self.assertEqual(r.version, "TLSv1.3", r)

    def test_min_version_13(self):
        before = self.failures("protocol_version")
        r = self.sc("tls13", "-tls1_2", "-servername", "localhost")
        self.assertFalse(r.established, r)
        self.wait_failure_counted("protocol_version", before, "TLS 1.2 against min-version 1.3")
        r = self.sc("tls13", "-servername", "localhost")
        self.assertEqual(r.version, "TLSv1.3", r)

    def test_max_version_12(self):
        r = self.sc("tls12", "-servername", "localhost")
        self.assertTrue(r.established, r)
        self.assertEqual(r.version, "TLSv1.2", r)
        r = self.sc("tls12", "-tls1_3", "-servername", "localhost")
        self.assertFalse(r.established, r)
        rc, status, _, body, err = self.https("tls12", "/")
        self.assertEqual((rc, status), (0, 200), err)

    def test_weak_ciphers_refused(self):
        for cipher, sigalgs in (("AES128-SHA", "RSA+SHA256"), ("ECDHE-RSA-AES128-SHA", "RSA+SHA256"),
                                ("ECDHE-ECDSA-AES128-SHA", "ECDSA+SHA256"), ("DES-CBC3-SHA", "RSA+SHA256")):
            before = self.failures("no_shared_cipher")
            r = self.sc("tls", "-tls1_2", "-cipher", cipher + "@SECLEVEL=0", "-sigalgs", sigalgs,
                        "-servername", "localhost")
            self.assertFalse(r.established, (cipher, r))
            self.assertRegex(r.text, r"alert handshake failure|no cipher", (cipher, r))
            if "no cipher" not in r.text:
                self.wait_failure_counted("no_shared_cipher", before, cipher)

    def test_alpn_prefers_h2_then_http11(self):
        # HTTP/2 is on by default (docs/architecture/http2.md): h2 wins whatever the client's order.
        r = self.sc("tls", "-alpn", "http/1.1,h2", "-servername", "localhost")
        self.assertTrue(r.established, r)
        self.assertEqual(r.alpn, "h2", r)
        r = self.sc("tls", "-alpn", "http/1.1", "-servername", "localhost")
        self.assertEqual(r.alpn, "http/1.1", r)
        # A protocol we do not serve is never selected; the handshake goes on without ALPN.
        r = self.sc("tls", "-alpn", "spdy/3", "-servername", "localhost")
        self.assertTrue(r.established, r)
        self.assertNotEqual(r.alpn, "spdy/3", r)
        rc, status, headers, body, err = self.https("tls", "/", "--http2", "-w", "%{http_version}")
        self.assertEqual((rc, status), (0, 200), err)
        self.assertTrue(body.endswith(b"2"), body)

    # -- session resumption -------------------------------------------------------------------

    def resume_pair(self, port_name, *args):
        """Full handshake saving the session, then one offering it: (first, second)."""
        sess = os.path.join(self.workdir, "session-%s-%d" % (port_name, time.monotonic_ns()))
        data = self.request_text()
        # -ign_eof: stay until the server closes (after the response), so TLS 1.3 tickets,
        # which arrive after the handshake, are received and saved.
        first = self.sc(port_name, "-servername", "localhost", "-ign_eof", "-sess_out", sess, *args,
                        data=data)
        self.assertTrue(first.established, first)
        self.assertEqual(first.state, "New", first)
        self.assertIn("HTTP/1.1 200", first.out, first)
        self.assertTrue(os.path.getsize(sess) > 0, "s_client saved no session")
        return first, sess

    def resume(self, port_name, sess, *args):
        r = self.sc(port_name, "-servername", "localhost", "-ign_eof", "-sess_in", sess, *args,
                    data=self.request_text())
        self.assertIn("HTTP/1.1 200", r.out, r)
        return r

    def test_session_resumption(self):
        for args in ((), ("-tls1_2",)):
            _, sess = self.resume_pair("tls", *args)
            before = self.metric("sentinel_tls_resumed_handshakes_total")
            r = self.resume("tls", sess, *args)
            self.assertEqual(r.state, "Reused", (args, r))
            wait_until(lambda: self.metric("sentinel_tls_resumed_handshakes_total") > before, 5,
                       what="sentinel_tls_resumed_handshakes_total to move")

    def test_session_cache_without_tickets(self):
        # session-tickets #false: TLS 1.2 resumes by session ID from the server's cache.
        _, sess = self.resume_pair("noticket", "-tls1_2")
        r = self.resume("noticket", sess, "-tls1_2")
        self.assertEqual(r.state, "Reused", r)
        self.assertNotIn("TLS session ticket:", r.out.split("Reused", 1)[1], r)

    def test_ticket_survives_reload(self):
        sessions = [self.resume_pair("tls", *args)[1] for args in ((), ("-tls1_2",))]
        ok = metric_value(self.s.metrics(), "sentinel_config_reloads_total", result="success")
        # A changed TLS block (so the context is rebuilt) and a new route to see the reload.
        self.s.write_config(self.config(tls_extra='session-timeout "10m"',
                                        extra_routes='route "reloaded" { match { path "/reloaded" }; '
                                                     'respond 200 { body "yes" } }'))
        r = self.s.admin_post("/reload")
        self.assertTrue(200 <= r.status < 300, r)
        wait_until(lambda: http_request(self.ports["plain"], "GET", "/reloaded").status == 200, 5,
                   what="the reloaded config to serve")
        self.assertGreater(metric_value(self.s.metrics(), "sentinel_config_reloads_total",
                                        result="success"), ok)
        before = self.metric("sentinel_tls_resumed_handshakes_total")
        for sess, args in zip(sessions, ((), ("-tls1_2",))):
            r = self.resume("tls", sess, *args)
            self.assertEqual(r.state, "Reused", ("ticket from before the reload", args, r))
        wait_until(lambda: self.metric("sentinel_tls_resumed_handshakes_total") >= before + 2, 5,
                   what="both resumptions to be counted")
        # And back (other tests assume the original config).
        self.s.write_config(self.config())
        self.assertTrue(200 <= self.s.admin_post("/reload").status < 300)
        wait_until(lambda: http_request(self.ports["plain"], "GET", "/reloaded").status == 404, 5,
                   what="the original config to serve again")

    # -- client certificates ------------------------------------------------------------------

    def origin_headers(self, body):
        return json.loads(body)["headers"]

    def values(self, headers, name):
        return [v for k, v in headers if k.lower() == name.lower()]

    def test_client_auth_required_without_certificate(self):
        before = self.failures("client_certificate")
        origin_before = self.origin.stats()
        rc, status, _, body, err = self.https("mtls", "/cert/x")
        self.assertNotEqual(rc, 0, "request without a client certificate succeeded: %s %r" % (status, body))
        self.assertIsNone(status)
        self.wait_failure_counted("client_certificate", before, "a missing client certificate")
        # With s_client (TLS 1.2, where the server refuses inside the handshake).
        r = self.sc("mtls", "-tls1_2", "-servername", "localhost", data=self.request_text("/cert/y"))
        self.assertNotIn("HTTP/1.1", r.out, r)
        # An untrusted client certificate (self-signed by nobody the CA knows) fails as well.
        other_ca = make_certs(os.path.join(self.workdir, "other-ca"))
        rc, status, _, _, err = self.https("mtls", "/cert/z", "--cert", os.path.join(other_ca, "client.pem"),
                                           "--key", os.path.join(other_ca, "client.key"))
        self.assertNotEqual(rc, 0, err)
        origin_after = self.origin.stats()
        per_stats_call = self.origin.stats()["requests_total"] - origin_after["requests_total"]
        self.assertEqual(origin_after["requests_total"] - origin_before["requests_total"], per_stats_call,
                         "a request without a valid client certificate reached the origin")

    def test_client_auth_required_with_certificate(self):
        client = os.path.join(self.certs, "client.pem")
        key = os.path.join(self.certs, "client.key")
        rc, status, _, body, err = self.https("mtls", "/cert/x", "--cert", client, "--key", key,
                                              "-H", "X-Client-Subject: CN=admin",
                                              "-H", "X-Client-Cert-SHA256: 00")
        self.assertEqual((rc, status), (0, 200), err)
        headers = self.origin_headers(body)
        self.assertEqual(self.values(headers, "X-Client-Subject"),
                         [rfc2253_subject(os.path.join(self.certs, "client.leaf"))], headers)
        self.assertEqual(self.values(headers, "X-Client-Subject"), ["O=Sentinel Tests,CN=test-client"])
        self.assertEqual(self.values(headers, "X-Client-Cert-SHA256"),
                         [file_fingerprint(os.path.join(self.certs, "client.leaf"))], headers)
        # Over TLS 1.2 too.
        rc, status, _, body, err = self.https("mtls", "/cert/y", "--cert", client, "--key", key,
                                              "--tls-max", "1.2")
        self.assertEqual((rc, status), (0, 200), err)
        self.assertEqual(len(self.values(self.origin_headers(body), "X-Client-Cert-SHA256")), 1)

    def test_client_auth_optional_spoofing_removed(self):
        rc, status, _, body, err = self.https("mtls_opt", "/cert/x",
                                              "-H", "X-Client-Subject: CN=admin",
                                              "-H", "x-client-cert-sha256: deadbeef")
        self.assertEqual((rc, status), (0, 200), err)
        headers = self.origin_headers(body)
        self.assertEqual(self.values(headers, "X-Client-Subject"), [], headers)
        self.assertEqual(self.values(headers, "X-Client-Cert-SHA256"), [], headers)
        # Same on a listener without client-auth at all.
        rc, status, _, body, err = self.https("tls", "/cert/x", "-H", "X-Client-Subject: CN=admin")
        self.assertEqual((rc, status), (0, 200), err)
        self.assertEqual(self.values(self.origin_headers(body), "X-Client-Subject"), [])
        # Optional + a certificate: the verified one arrives.
        rc, status, _, body, err = self.https("mtls_opt", "/cert/x",
                                              "--cert", os.path.join(self.certs, "client.pem"),
                                              "--key", os.path.join(self.certs, "client.key"),
                                              "-H", "X-Client-Subject: CN=admin")
        self.assertEqual((rc, status), (0, 200), err)
        self.assertEqual(self.values(self.origin_headers(body), "X-Client-Subject"),
                         ["O=Sentinel Tests,CN=test-client"])
        # Routes without client-certificate-headers pass no such header either way.
        rc, status, _, body, err = self.https("mtls_opt", "/app/x",
                                              "--cert", os.path.join(self.certs, "client.pem"),
                                              "--key", os.path.join(self.certs, "client.key"))
        self.assertEqual((rc, status), (0, 200), err)
        self.assertEqual(self.values(self.origin_headers(body), "X-Client-Cert-SHA256"), [])

    # -- OCSP ---------------------------------------------------------------------------------

    def test_ocsp_stapling(self):
        r = self.sc("tls", "-status", "-servername", "localhost")
        self.assertTrue(r.established, r)
        self.assertIn("OCSP Response Status: successful", r.out, r)
        self.assertRegex(r.out, r"Cert Status: good", r)
        # The certificate without an ocsp= file staples nothing.
        r = self.sc("tls", "-status", "-servername", "other.test")
        self.assertIn("OCSP response: no response sent", r.out, r)

    # -- security headers ---------------------------------------------------------------------

    def assertSecurityHeaders(self, headers, expected=SECURITY):
        for name, value in expected.items():
            self.assertEqual(header_of(headers, name), value, (name, headers))
            self.assertEqual(len([1 for k, _ in headers if k.lower() == name]), 1, (name, headers))

    def test_security_headers(self):
        for path, status in (("/app/x", 200), ("/", 200), ("/no-route-here", 404)):
            rc, st, headers, _, err = self.https("tls", path)
            self.assertEqual((rc, st), (0, status), (path, err))
            self.assertSecurityHeaders(headers)
        # Off for a route.
        rc, st, headers, _, err = self.https("tls", "/nosec/x")
        self.assertEqual((rc, st), (0, 200), err)
        for name in SECURITY:
            self.assertIsNone(header_of(headers, name), (name, headers))
        # The origin's own value wins (and is not doubled).
        rc, st, headers, _, err = self.https("tls", "/response-headers?X-Frame-Options=SAMEORIGIN")
        self.assertEqual((rc, st), (0, 200), err)
        self.assertEqual([v for k, v in headers if k.lower() == "x-frame-options"], ["SAMEORIGIN"], headers)
        self.assertEqual(header_of(headers, "strict-transport-security"), "max-age=31536000")
        # Plain HTTP never gets HSTS (nor the other TLS listener headers).
        for path in ("/app/x", "/", "/no-route-here"):
            r = http_request(self.ports["plain"], "GET", path, host="localhost")
            self.assertIsNone(r.header("strict-transport-security"), r)

    def test_redirect_to_https(self):
        r = http_request(self.ports["plain"], "GET", "/a/b?x=1", host="redirect.test")
        self.assertEqual(r.status, 301, r)
        self.assertEqual(r.header("location"), "https://redirect.test:%d/a/b?x=1" % self.ports["tls"], r)
        self.assertIsNone(r.header("strict-transport-security"), r)

    # -- odd clients ----------------------------------------------------------------------------

    def test_plain_http_on_tls_port(self):
        before = self.failures("protocol_version") + self.failures("other")
        with connect(self.ports["tls"]) as s:
            s.sendall(request_bytes("GET", "/", "localhost", [("Connection", "close")]))
            try:
                data = ResponseReader(s, 5).read_until_eof(5)
            except ConnectionResetError:
                data = b""
        self.assertFalse(data.startswith(b"HTTP/"), data[:200])
        wait_until(lambda: self.failures("protocol_version") + self.failures("other") > before, 5,
                   what="the plain-HTTP attempt to count as protocol_version/other")

    def test_handshake_timeout(self):
        before = self.failures("timeout")
        t0 = time.monotonic()
        with connect(self.ports["tls"]) as s:
            try:
                data = ResponseReader(s, 10).read_until_eof(10)
            except ConnectionResetError:
                data = b""
        elapsed = time.monotonic() - t0
        self.assertFalse(data.startswith(b"HTTP/"), data[:200])
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 4.0, "silent client kept for %.1fs with client-header 1s" % elapsed)
        self.wait_failure_counted("timeout", before, "the silent client")
        # A client that sends half a ClientHello and stalls is closed as well.
        hello = SClientHelloPrefix
        t0 = time.monotonic()
        with connect(self.ports["tls"]) as s:
            s.sendall(hello)
            try:
                ResponseReader(s, 10).read_until_eof(10)
            except ConnectionResetError:
                pass
        self.assertLess(time.monotonic() - t0, 4.0)

    def test_close_notify_on_connection_close(self):
        # After a `Connection: close` response the server ends the TLS stream with
        # close_notify: without it OpenSSL 3 clients report "unexpected eof while reading"
        # (a truncation) and drop the session (see test_session_cache_without_tickets).
        t0 = time.monotonic()
        r = self.sc("tls", "-servername", "localhost", "-ign_eof", data=self.request_text("/app/close"))
        self.assertIn("HTTP/1.1 200", r.out, r)
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("unexpected eof", r.text, r)
        self.assertLess(time.monotonic() - t0, 5.0, r)
        # Python's client sees a clean end of stream too.
        c = TlsClient(self.ports["tls"], self.ca)
        try:
            c.sock.sendall(request_bytes("GET", "/app/x", "localhost", [("Connection", "close")]))
            resp = c.reader.read_response()
            self.assertEqual(resp.status, 200)
            c.sock.settimeout(5)
            # close_notify reads as b"" (so would a ragged EOF: the s_client run above is the check)
            self.assertEqual(c.sock.recv(100), b"")
        finally:
            c.close()

    # Local replies (respond, redirect, the no-route 404) end the connection when the request
    # says `Connection: close`, as proxied responses do.
    def test_local_reply_honours_connection_close(self):
        for port_name in ("tls", "plain"):
            t0 = time.monotonic()
            if port_name == "tls":
                r = self.sc("tls", "-servername", "localhost", "-ign_eof", data=self.request_text("/"),
                            timeout=4)
                self.assertNotEqual(r.rc, -1, "connection not closed after a local reply to Connection: close")
            else:
                with connect(self.ports["plain"]) as s:
                    s.sendall(request_bytes("GET", "/", "localhost", [("Connection", "close")]))
                    ResponseReader(s, 4).read_until_eof(4)
            self.assertLess(time.monotonic() - t0, 3.0)

    def test_keep_alive_over_tls(self):
        c = TlsClient(self.ports["tls"], self.ca)
        try:
            for i in range(5):
                r = c.request("GET", "/app/%d" % i)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(json.loads(r.body)["path"], "/app/%d" % i)
        finally:
            c.close()


# A TLS record header + the start of a ClientHello that promises more bytes than follow.
SClientHelloPrefix = bytes.fromhex("160301020001") + b"\x00\x01\xfc\x03\x03" + b"\x00" * 20


CERT_RELOAD = r"""
admin { listen "127.0.0.1:@admin@" }
listeners {
    listener "plain" { listen "127.0.0.1:@plain@" }
    listener "tls" {
        listen "127.0.0.1:@tls@"; protocol "https"
        tls { certificate "live.pem" key="live.key" }
    }
}
routes {
    route "probe" { match { path "/" }; respond 200 { body "ok" } }
    route "app" { match { path-prefix "/app/" }; upstream "app" }
}
upstreams { upstream "app" { endpoint "@upstream@" } }
"""


class CertificateRenewalTest(IntegrationTest):

    def replace(self, src, dst):
        tmp = dst + ".tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)

    def test_certificate_files_reloaded_without_reload(self):
        certs = make_certs(os.path.join(self.workdir, "certs"))
        ca = os.path.join(certs, "ca.pem")
        live_pem = os.path.join(self.workdir, "live.pem")
        live_key = os.path.join(self.workdir, "live.key")
        shutil.copyfile(os.path.join(certs, "site.pem"), live_pem)
        shutil.copyfile(os.path.join(certs, "site.key"), live_key)
        fp_site = file_fingerprint(os.path.join(certs, "site.leaf"))
        fp_other = file_fingerprint(os.path.join(certs, "other.leaf"))
        origin = self.start_origin("app")
        ports = {k: free_port() for k in ("admin", "plain", "tls")}
        s = self.start_sentinel(render(CERT_RELOAD, upstream=origin.address, **ports),
                                port=ports["plain"], admin_port=ports["admin"])

        def presented(name="localhost"):
            r = SClient(ports["tls"], ("-servername", name))
            return r.leaf_fingerprint()

        self.assertEqual(presented(), fp_site)
        kept = TlsClient(ports["tls"], ca)
        self.addCleanup(kept.close)
        self.assertEqual(kept.request("GET", "/app/before").status, 200)
        reloads = metric_value(s.metrics(), "sentinel_config_reloads_total")

        time.sleep(1.1)  # a different mtime even on coarse-grained file systems
        self.replace(os.path.join(certs, "other.key"), live_key)
        self.replace(os.path.join(certs, "other.pem"), live_pem)
        t0 = time.monotonic()
        wait_until(lambda: presented() == fp_other, 6, interval=0.2,
                   what="new handshakes to present the renewed certificate")
        took = time.monotonic() - t0
        self.assertLess(took, 4.0, "renewed certificate served only after %.1fs" % took)
        self.assertEqual(presented("other.test"), fp_other)
        # No config reload happened; the established connection still works.
        self.assertEqual(metric_value(s.metrics(), "sentinel_config_reloads_total"), reloads)
        r = kept.request("GET", "/app/after")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(kept.peer_fingerprint(), fp_site)

        # A broken renewal (key does not match) keeps the current certificate.
        self.replace(os.path.join(certs, "site.key"), live_key)  # other.pem + site.key
        time.sleep(3)
        self.assertEqual(presented(), fp_other)
        self.assertIsNone(s.proc.poll())
        # Completing it (matching cert) switches.
        self.replace(os.path.join(certs, "site.pem"), live_pem)
        wait_until(lambda: presented() == fp_site, 6, interval=0.2,
                   what="the completed renewal to be served")


if __name__ == "__main__":
    unittest.main()
