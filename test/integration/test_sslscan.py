"""An outside scanner's view of a TLS listener with DEFAULT settings: `sslscan` must find no
protocol older than TLS 1.2, no NULL/EXPORT/RC4/3DES/CBC-SHA1 suites, no insecure
renegotiation, and TLS 1.3 enabled.

sslscan is a required test dependency (scripts/install-deps installs it): when it is missing
the test fails instead of skipping, so a machine without it cannot pass silently. A control
listener configured with a CBC-SHA1 suite shows the checks do see weak suites."""

import os
import re
import shutil
import subprocess
import unittest
import xml.etree.ElementTree as ET

from harness import SUPPORT, IntegrationTest, free_port, render

MAKE_CERTS = os.path.join(SUPPORT, "make-certs.sh")

CONFIG = r"""
listeners {
    listener "plain" { listen "127.0.0.1:@plain@" }
    listener "default" {
        listen "127.0.0.1:@tls@"; protocol "https"
        tls {
            certificate "certs/site.pem" key="certs/site.key"
            certificate "certs/site-rsa.pem" key="certs/site-rsa.key"
        }
    }
    listener "weak-control" {
        listen "127.0.0.1:@weak@"; protocol "https"
        tls {
            certificate "certs/site.pem" key="certs/site.key"
            max-version "1.2"
            ciphers "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256"
        }
    }
}
routes { route "probe" { respond 200 { body "ok" } } }
"""

OLD_PROTOCOLS = {("ssl", "2"), ("ssl", "3"), ("tls", "1.0"), ("tls", "1.1")}


def weak_reason(cipher):
    """Why a suite name is unacceptable, or None."""
    c = cipher.upper()
    if "NULL" in c or c.startswith("EXP") or "EXPORT" in c:
        return "NULL/EXPORT"
    if "RC4" in c:
        return "RC4"
    if "DES-CBC3" in c or "3DES" in c or re.search(r"(^|[-_])DES([-_]|$)", c):
        return "3DES/DES"
    aead = any(x in c for x in ("GCM", "CHACHA", "POLY1305", "CCM"))
    if not aead and (c.endswith("-SHA") or c.endswith("_SHA")):
        return "CBC with SHA-1"
    if not aead and not c.startswith("TLS_"):
        return "not an AEAD suite"
    return None


def scan(port):
    exe = shutil.which("sslscan")
    if exe is None:
        raise AssertionError("sslscan is not installed: scripts/install-deps installs it and "
                             "this test requires it")
    p = subprocess.run([exe, "--no-colour", "--xml=-", "127.0.0.1:%d" % port],
                       capture_output=True, timeout=100, stdin=subprocess.DEVNULL)
    text = p.stdout.decode(errors="replace")
    start = text.find("<?xml")
    if p.returncode != 0 or start < 0:
        raise AssertionError("sslscan failed (%s): %s %s" % (p.returncode, text[-2000:],
                                                              p.stderr.decode(errors="replace")[-2000:]))
    root = ET.fromstring(text[start:])
    test = root.find("ssltest")
    if test is None:
        raise AssertionError("no <ssltest> in sslscan output: %s" % text[-2000:])
    return test, text


def problems(test):
    out = []
    for proto in test.findall("protocol"):
        key = (proto.get("type"), proto.get("version"))
        if key in OLD_PROTOCOLS and proto.get("enabled") == "1":
            out.append("protocol %s %s enabled" % key)
    for c in test.findall("cipher"):
        if c.get("status") not in ("accepted", "preferred"):
            continue
        reason = weak_reason(c.get("cipher", ""))
        if reason:
            out.append("%s suite %s accepted (%s)" % (c.get("sslversion"), c.get("cipher"), reason))
    for r in test.findall("renegotiation"):
        if r.get("supported") == "1" and r.get("secure") != "1":
            out.append("insecure renegotiation supported")
    return out


class SslscanTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        subprocess.run(["sh", MAKE_CERTS, os.path.join(cls.class_workdir, "certs")], check=True,
                       timeout=120, capture_output=True, stdin=subprocess.DEVNULL)
        cls.ports = {k: free_port() for k in ("plain", "tls", "weak")}
        cls.s = cls.class_sentinel(render(CONFIG, **cls.ports), port=cls.ports["plain"])

    def test_default_listener_passes_scan(self):
        test, text = scan(self.ports["tls"])
        self.assertEqual(problems(test), [], text)
        protocols = {(p.get("type"), p.get("version")): p.get("enabled") for p in test.findall("protocol")}
        self.assertEqual(protocols.get(("tls", "1.3")), "1", protocols)
        self.assertEqual(protocols.get(("tls", "1.2")), "1", protocols)
        for old in OLD_PROTOCOLS:
            self.assertEqual(protocols.get(old), "0", (old, protocols))  # scanned, and refused
        accepted = [c.get("cipher") for c in test.findall("cipher") if c.get("status") in ("accepted", "preferred")]
        self.assertTrue(any(c.startswith("TLS_") for c in accepted), accepted)
        self.assertTrue(any("ECDHE-ECDSA" in c for c in accepted), accepted)
        self.assertTrue(any("ECDHE-RSA" in c for c in accepted), accepted)
        self.assertNotIn("Insecure session renegotiation supported", text)
        reneg = test.findall("renegotiation")
        self.assertEqual(len(reneg), 1, text)

    def test_checks_detect_a_weak_suite(self):
        # Control: the same checks on a listener configured with a CBC-SHA1 suite.
        test, text = scan(self.ports["weak"])
        found = problems(test)
        self.assertTrue(any("ECDHE-ECDSA-AES128-SHA " in p for p in found), (found, text))

    def test_weak_reason_classifier(self):
        for name in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "DES-CBC3-SHA", "RC4-SHA", "NULL-SHA256",
                     "EXP-RC4-MD5", "ECDHE-RSA-AES128-SHA256", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"):
            self.assertIsNotNone(weak_reason(name), name)
        for name in ("TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                     "ECDHE-RSA-CHACHA20-POLY1305"):
            self.assertIsNone(weak_reason(name), name)


if __name__ == "__main__":
    unittest.main()
