#!/usr/bin/python3
"""Example agent: tags each request with its route id and blocks configured path prefixes.

  header_agent.py --socket /run/sentinel/headers.sock [--ready-file F] [--log-level debug]

Proxy config:

  agents {
      agent "headers" {
          socket "/run/sentinel/headers.sock"
          config {
              route-header "x-route-id"          // optional; default "x-sentinel-route"
              block-path "/admin" "/internal"    // path prefixes answered with 403
              block-status 404                   // optional; default 403
          }
      }
  }
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sentinel_agent as sa  # noqa: E402


class HeaderAgent(sa.Agent):
    name = "sentinel-header-agent"
    version = "1.0"
    events = (sa.REQUEST_HEADERS,)

    def __init__(self):
        self.route_header = "x-sentinel-route"
        self.block_paths = ()
        self.block_status = 403

    def configure(self, config):
        errors = []
        for node in config.children:
            args = sa.node_args(node)
            if node.name == "route-header":
                if len(args) != 1 or not isinstance(args[0], str):
                    errors.append(sa.config_error(node, "route-header takes one header name"))
                    continue
                try:
                    sa.Decision().set_request_header(args[0], "x")  # the SDK checks the name
                except ValueError as e:
                    errors.append(sa.config_error(node, str(e)))
                    continue
                self.route_header = args[0]
            elif node.name == "block-path":
                if not args or not all(isinstance(a, str) and a.startswith("/") for a in args):
                    errors.append(sa.config_error(node, "block-path takes one or more paths starting with /"))
                    continue
                self.block_paths += tuple(args)
            elif node.name == "block-status":
                if len(args) != 1 or not isinstance(args[0], int) or not 400 <= args[0] <= 599:
                    errors.append(sa.config_error(node, "block-status takes one status 400-599"))
                    continue
                self.block_status = args[0]
            else:
                errors.append(sa.config_error(
                    node, "unknown setting %r (expected route-header, block-path, block-status)" % node.name))
        return errors

    async def on_request_headers(self, stream, req):
        for prefix in self.block_paths:
            if req.path.startswith(prefix):
                return (sa.block(self.block_status, "blocked by %s\n" % self.name,
                                 {"content-type": "text/plain"})
                        .audit("path %s is blocked" % prefix, tags=["header-agent"], rule_ids=["block-path"]))
        return sa.allow().set_request_header(self.route_header, req.route)


if __name__ == "__main__":
    sys.exit(sa.main(HeaderAgent, description=__doc__.splitlines()[0]))
