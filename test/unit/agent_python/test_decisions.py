"""Decision builders check the rules the proxy enforces (PROTOCOL.md §6); event and config
readers."""

import unittest

from agent_test_support import sa, pb

SET, ADD, REMOVE = pb.HeaderMutation.SET, pb.HeaderMutation.ADD, pb.HeaderMutation.REMOVE


class BuildTest(unittest.TestCase):
    def test_allow_with_everything(self):
        d = (sa.allow().set_request_header("X-A", "1").add_request_header("x-b", b"\xff")
             .remove_request_header("x-c").set_response_header("x-d", "4").add_response_header("x-e", 5)
             .remove_response_header("x-f").set_metadata("k", "v").audit("why", tags=["t"], rule_ids=["r1"])
             .replace_body(""))
        p = d.to_proto()
        self.assertEqual(d.action, "allow")
        self.assertTrue(p.allow)
        self.assertEqual([(m.op, m.name, m.value) for m in p.request_headers],
                         [(SET, "X-A", b"1"), (ADD, "x-b", b"\xff"), (REMOVE, "x-c", b"")])
        self.assertEqual([(m.op, m.name, m.value) for m in p.response_headers],
                         [(SET, "x-d", b"4"), (ADD, "x-e", b"5"), (REMOVE, "x-f", b"")])
        self.assertEqual(dict(p.metadata), {"k": "v"})
        self.assertEqual((p.audit.reason, list(p.audit.tags), list(p.audit.rule_ids)), ("why", ["t"], ["r1"]))
        self.assertTrue(p.HasField("replace_body"))
        self.assertEqual(p.replace_body, b"")
        self.assertFalse(sa.allow().to_proto().HasField("replace_body"))

    def test_block(self):
        p = sa.block(451, "gone", {"content-type": "text/plain"}).to_proto()
        self.assertEqual((p.block.status, p.block.body), (451, b"gone"))
        self.assertEqual([(h.name, h.value) for h in p.block.headers], [("content-type", b"text/plain")])
        self.assertEqual(sa.block().to_proto().block.status, 403)
        self.assertEqual(sa.block(headers=[("a", "1"), ("a", "2")]).to_proto().block.headers[1].value, b"2")
        for bad in (399, 600, 200, 0):
            with self.assertRaises(ValueError):
                sa.block(bad)
        with self.assertRaises(ValueError):
            sa.block(403, headers={"bad name": "x"})

    def test_redirect(self):
        p = sa.redirect("https://x/", 308).to_proto()
        self.assertEqual((p.redirect.status, p.redirect.location), (308, "https://x/"))
        self.assertEqual(sa.redirect("/a").to_proto().redirect.status, 302)
        for bad in (300, 304, 305, 200):
            with self.assertRaises(ValueError):
                sa.redirect("/", bad)
        for bad in ("", "/a\r\nx: y"):
            with self.assertRaises(ValueError):
                sa.redirect(bad)

    def test_need_more_body(self):
        self.assertTrue(sa.need_more_body().to_proto().need_more_body)
        self.assertEqual(sa.need_more_body().action, "need_more_body")

    def test_field_rules(self):
        d = sa.allow()
        for name in ("", "a b", "a:b", "é", "a\r"):
            with self.assertRaises(ValueError, msg=name):
                d.set_request_header(name, "x")
        for value in ("a\rb", "a\nb", "a\0b", b"\r\n"):
            with self.assertRaises(ValueError, msg=value):
                d.set_response_header("x", value)
        for name in ("Connection", "transfer-encoding", "Content-Length"):
            for call in (d.set_request_header, d.add_response_header):
                with self.assertRaises(ValueError):
                    call(name, "1")
            with self.assertRaises(ValueError):
                d.remove_request_header(name)
        with self.assertRaises(ValueError):
            d.remove_request_header("Host")
        d.set_request_header("Host", "example.com")  # SET is allowed
        self.assertEqual(len(d.to_proto().request_headers), 1)
        with self.assertRaises(TypeError):
            d.set_request_header("x", 1.5)

    def test_to_proto(self):
        self.assertEqual(sa.decisions.to_proto(None), pb.Decision(allow=True))
        raw = pb.Decision(need_more_body=True)
        self.assertIs(sa.decisions.to_proto(raw), raw)
        self.assertTrue(sa.decisions.to_proto(pb.Decision(metadata={"a": "b"})).allow)
        with self.assertRaises(TypeError):
            sa.decisions.to_proto("allow")


class ReadTest(unittest.TestCase):
    def test_headers(self):
        msg = pb.RequestHeaders()
        for name, value in (("Host", b"a"), ("X-Dup", b"1"), ("x-dup", b"2"), ("X-Bin", b"\xff")):
            msg.headers.add(name=name, value=value)
        self.assertEqual(sa.header(msg, "host"), "a")
        self.assertEqual(sa.header(msg, "x-dup"), "1")
        self.assertEqual(sa.header_values(msg, "X-DUP"), ["1", "2"])
        self.assertEqual(sa.header(msg, "missing", "d"), "d")
        self.assertEqual(sa.header_bytes(msg, "x-bin"), b"\xff")
        self.assertEqual(sa.header(msg, "x-bin"), "\ufffd")
        self.assertEqual(sa.headers_dict(msg), {"host": "a", "x-dup": "1, 2", "x-bin": "\ufffd"})

    def test_config(self):
        node = pb.ConfigNode(name="rule", path="p")
        node.args.extend([pb.ConfigValue(string="s"), pb.ConfigValue(integer=0), pb.ConfigValue(number=1.5),
                          pb.ConfigValue(boolean=False), pb.ConfigValue(null=True), pb.ConfigValue()])
        node.props["k"].CopyFrom(pb.ConfigValue(integer=7))
        node.children.add(name="child", path="p.child[0]")
        self.assertEqual(sa.node_args(node), ["s", 0, 1.5, False, None, None])
        self.assertEqual(sa.node_props(node), {"k": 7})
        self.assertEqual(sa.config_to_dict(node), {
            "name": "rule", "path": "p", "args": ["s", 0, 1.5, False, None, None], "props": {"k": 7},
            "children": [{"name": "child", "path": "p.child[0]", "args": [], "props": {}}]})
        self.assertEqual(sa.config_error(node.children[0], "bad"), ("p.child[0]", "bad"))


if __name__ == "__main__":
    unittest.main()
