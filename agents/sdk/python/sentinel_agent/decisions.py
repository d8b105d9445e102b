"""Building decisions (PROTOCOL.md §6) and reading events, so an agent's handlers stay short.

    return allow().set_request_header("x-route", event.route)
    return block(403, "denied\\n").audit("path denied", rule_ids=["deny-1"])

The rules the proxy enforces on a decision (field names, CR/LF/NUL in values, hop-by-hop
fields, status ranges) are checked here when the decision is built, so a mistake raises a
ValueError in the agent with a traceback instead of an "invalid decision" count at the proxy.
"""

from . import sentinel_agent_v1_pb2 as pb

_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# PROTOCOL.md §6: never changed by an agent; Host only cannot be removed.
_FIXED_FIELDS = frozenset({"connection", "transfer-encoding", "content-length"})
BLOCK_STATUS_RANGE = range(400, 600)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def _to_bytes(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode("ascii")
    raise TypeError("expected str or bytes, got %s" % type(value).__name__)


def check_field_name(name):
    if not isinstance(name, str) or not name or any(b not in _TOKEN_CHARS for b in name.encode("utf-8")):
        raise ValueError("invalid header field name %r" % (name,))
    return name


def check_field_value(value):
    data = _to_bytes(value)
    if b"\r" in data or b"\n" in data or b"\0" in data:
        raise ValueError("header field value %r contains CR, LF or NUL" % (data,))
    return data


def header_mutation(op, name, value=b""):
    """One HeaderMutation; op is pb.HeaderMutation.SET / ADD / REMOVE."""
    check_field_name(name)
    lower = name.lower()
    if lower in _FIXED_FIELDS:
        raise ValueError("%s is hop-by-hop framing and cannot be changed by an agent" % name)
    if lower == "host" and op == pb.HeaderMutation.REMOVE:
        raise ValueError("Host cannot be removed")
    data = b"" if op == pb.HeaderMutation.REMOVE else check_field_value(value)
    return pb.HeaderMutation(op=op, name=name, value=data)


def _header_list(headers):
    """dict or iterable of (name, value) → [pb.Header], checked."""
    if headers is None:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [pb.Header(name=check_field_name(n), value=check_field_value(v)) for n, v in items]


class Decision:
    """A decision under construction; every method returns self so calls chain.

    `proto` is the pb.Decision that is sent. Handlers may return a Decision, a pb.Decision
    or None (allow).
    """

    __slots__ = ("proto",)

    def __init__(self, proto=None):
        self.proto = proto if proto is not None else pb.Decision(allow=True)

    @property
    def action(self):
        """"allow", "block", "redirect" or "need_more_body"."""
        return self.proto.WhichOneof("action") or "allow"

    # -- header mutations (PROTOCOL.md §6): request ones go upstream, response ones to the client
    def set_request_header(self, name, value):
        self.proto.request_headers.append(header_mutation(pb.HeaderMutation.SET, name, value))
        return self

    def add_request_header(self, name, value):
        self.proto.request_headers.append(header_mutation(pb.HeaderMutation.ADD, name, value))
        return self

    def remove_request_header(self, name):
        self.proto.request_headers.append(header_mutation(pb.HeaderMutation.REMOVE, name))
        return self

    def set_response_header(self, name, value):
        self.proto.response_headers.append(header_mutation(pb.HeaderMutation.SET, name, value))
        return self

    def add_response_header(self, name, value):
        self.proto.response_headers.append(header_mutation(pb.HeaderMutation.ADD, name, value))
        return self

    def remove_response_header(self, name):
        self.proto.response_headers.append(header_mutation(pb.HeaderMutation.REMOVE, name))
        return self

    # -- the rest
    def set_metadata(self, key, value):
        """Passed to later agents of the request and written to the access log."""
        self.proto.metadata[str(key)] = str(value)
        return self

    def audit(self, reason=None, tags=(), rule_ids=()):
        """Audit-log details: always logged for a block or redirect."""
        if reason is not None:
            self.proto.audit.reason = reason
        self.proto.audit.tags.extend(tags)
        self.proto.audit.rule_ids.extend(rule_ids)
        return self

    def replace_body(self, data):
        """Replaces the body chunk this decision answers (b"" deletes it)."""
        self.proto.replace_body = _to_bytes(data)
        return self

    def to_proto(self):
        return self.proto

    def __repr__(self):
        return "Decision(%s)" % str(self.proto).replace("\n", " ").strip()


def allow():
    return Decision()


def block(status=403, body=b"", headers=None):
    """Answer the client with `status` (400-599), `body` and `headers` (dict or pairs)."""
    if status not in BLOCK_STATUS_RANGE:
        raise ValueError("block status must be 400-599, not %r" % (status,))
    return Decision(pb.Decision(block=pb.Block(status=status, body=_to_bytes(body),
                                               headers=_header_list(headers))))


def redirect(location, status=302):
    if status not in REDIRECT_STATUSES:
        raise ValueError("redirect status must be one of %s, not %r" % (sorted(REDIRECT_STATUSES), status))
    if not location:
        raise ValueError("redirect needs a location")
    check_field_value(location)
    return Decision(pb.Decision(redirect=pb.Redirect(status=status, location=location)))


def need_more_body():
    """Ask for the (next part of the) body; only when that body mode is not NONE (§5)."""
    return Decision(pb.Decision(need_more_body=True))


def to_proto(result):
    """What a handler returned → the pb.Decision to send (None means allow)."""
    if result is None:
        return pb.Decision(allow=True)
    if isinstance(result, Decision):
        result = result.proto
    if isinstance(result, pb.Decision):
        if result.WhichOneof("action") is None:
            result.allow = True  # a decision with only mutations allows, as in the C++ SDK
        return result
    raise TypeError("a handler must return a Decision, a pb.Decision or None, not %s"
                    % type(result).__name__)


# -- reading events -----------------------------------------------------------------------

def header_bytes(message, name, default=None):
    """The first value of header `name` (case-insensitive) in an event's `headers`, as bytes."""
    lower = name.lower()
    for h in message.headers:
        if h.name.lower() == lower:
            return h.value
    return default


def header(message, name, default=None):
    """The first value of header `name` as text (UTF-8; invalid bytes replaced)."""
    value = header_bytes(message, name)
    return default if value is None else value.decode("utf-8", "replace")


def header_values(message, name):
    """Every value of header `name`, in order, as text."""
    lower = name.lower()
    return [h.value.decode("utf-8", "replace") for h in message.headers if h.name.lower() == lower]


def headers_dict(message):
    """{lower-case name: value}; repeated fields are joined with ", "."""
    out = {}
    for h in message.headers:
        key = h.name.lower()
        value = h.value.decode("utf-8", "replace")
        out[key] = out[key] + ", " + value if key in out else value
    return out


# -- reading the config block -------------------------------------------------------------

def value_of(value):
    """A pb.ConfigValue as a Python value: str, int, float, bool or None."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null":
        return None
    return getattr(value, kind)


def node_args(node):
    return [value_of(v) for v in node.args]


def node_props(node):
    return {k: value_of(v) for k, v in node.props.items()}


def config_to_dict(node):
    """A ConfigNode tree as plain JSON-able data (for logs and tests)."""
    out = {"name": node.name, "path": node.path, "args": node_args(node), "props": node_props(node)}
    if node.children:
        out["children"] = [config_to_dict(c) for c in node.children]
    return out


def config_error(node, message):
    """A (path, message) entry for configure()'s result, locating `node` in the proxy config."""
    return (node.path, message)
