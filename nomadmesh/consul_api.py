"""The one boundary to Consul's HTTP API: py-consul in, nomadmesh errors out (deploy and xDS).

py-consul (the maintained fork of python-consul2, same `consul` module) lets CONSUL_HTTP_ADDR,
CONSUL_HTTP_TOKEN, CONSUL_HTTP_SSL and CONSUL_HTTP_SSL_VERIFY override its constructor arguments;
here the environment is read once (`ConsulConfig.from_env`), explicit arguments win, and the
HTTP client is built from that. Every answer is checked for the JSON shape Consul documents; a
failure is `ConsulUnavailable` (unreachable, timed out, 5xx) or an `ApiError` (refused, wrong
shape), with the token redacted from all quoted text.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs
import requests

from nomadmesh.errors import ApiError, ConsulUnavailable, InputError, PermissionDenied
from nomadmesh.redact import redact

DEFAULT_ADDRESS = "http://127.0.0.1:8500"
DEFAULT_TIMEOUT = 10.0

# py-consul's constructor reads the process environment; building clients one at a time keeps
# that read from racing with a test (or a thread) that changes the environment.
_CONSTRUCT = threading.Lock()


@attrs.frozen(kw_only=True)
class ConsulConfig:
    """Where Consul is and how to talk to it; the token is never part of the repr."""

    address: str = DEFAULT_ADDRESS
    token: str | None = attrs.field(default=None, repr=False)
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **explicit: Any) -> ConsulConfig:
        """CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY,
        CONSUL_CACERT, CONSUL_CLIENT_CERT/KEY as the consul CLI reads them; explicit wins."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        address = env.get("CONSUL_HTTP_ADDR")
        if address:
            if "://" not in address and env.get("CONSUL_HTTP_SSL", "").lower() in ("1", "true"):
                address = "https://" + address
            values["address"] = address
        if env.get("CONSUL_HTTP_TOKEN"):
            values["token"] = env["CONSUL_HTTP_TOKEN"]
        if env.get("CONSUL_CACERT"):
            values["verify"] = env["CONSUL_CACERT"]
        if env.get("CONSUL_HTTP_SSL_VERIFY", "").lower() in ("0", "false"):
            values["verify"] = False
        if env.get("CONSUL_CLIENT_CERT") and env.get("CONSUL_CLIENT_KEY"):
            values["cert"] = (env["CONSUL_CLIENT_CERT"], env["CONSUL_CLIENT_KEY"])
        values.update({k: v for k, v in explicit.items() if v is not None})
        return cls(**values)

    @property
    def url(self) -> str:
        """The address with a scheme and without a trailing slash."""
        address = self.address.strip().rstrip("/")
        return address if "://" in address else "http://" + address


class ConsulApi:
    """A client of one Consul agent: the reads nomadmesh needs, each answer's shape checked."""

    def __init__(self, config: ConsulConfig) -> None:
        self.config = config
        self.address = config.url
        parts = urlsplit(self.address)
        try:
            port = parts.port or 8500
        except ValueError:
            port = -1
        if not parts.hostname or parts.scheme not in ("http", "https") or port <= 0:
            raise InputError(f"Consul address {config.address!r} is not http(s)://host[:port]")
        # py-consul is imported by the first client, not by every command that may make one.
        import consul.std

        with _CONSTRUCT:
            client = consul.Consul(host=parts.hostname, port=port, token=config.token,
                                   scheme=parts.scheme, verify=config.verify, cert=config.cert)
        # The constructor prefers CONSUL_HTTP_TOKEN and builds its HTTP client with its own
        # timeout; both are set again from this configuration.
        client.http = consul.std.HTTPClient(parts.hostname, port, parts.scheme, config.verify,
                                            config.cert, connections_timeout=config.timeout)
        client.token = config.token
        self._client = client

    def close(self) -> None:
        """Release pooled connections."""
        self._client.http.session.close()

    def health_service(self, name: str, *, index: int | None = None,
                       wait: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        """`GET /v1/health/service/<name>` (a blocking query with `index`): the Consul index
        and every instance with its node and checks; any other shape is an ApiError."""
        idx, body = self.health_service_raw(name, index=index, wait=wait)
        if not isinstance(body, list) or not all(isinstance(e, dict) for e in body):
            raise self._shape(f"/v1/health/service/{name}", "a JSON list of objects", body)
        return idx, body

    def health_service_raw(self, name: str, *, index: int | None = None,
                           wait: str | None = None) -> tuple[int, Any]:
        """The same answer as decoded JSON of any shape, for callers that check each entry."""
        return self._call(f"reading service {name!r}",
                          lambda: self._client.health.service(name, index=index, wait=wait))

    def catalog_services(self, *, index: int | None = None,
                         wait: str | None = None) -> tuple[int, dict[str, list[str]]]:
        """`GET /v1/catalog/services` (a blocking query with `index`): names and their tags;
        any other shape (`null` included) is an ApiError."""
        idx, body = self.catalog_services_raw(index=index, wait=wait)
        if not isinstance(body, dict) or not all(
                isinstance(v, list) and all(isinstance(t, str) for t in v) for v in body.values()):
            raise self._shape("/v1/catalog/services", "a JSON object of tag lists", body)
        return idx, body

    def catalog_services_raw(self, *, index: int | None = None,
                             wait: str | None = None) -> tuple[int, Any]:
        """The same answer as decoded JSON of any shape, for callers that check each entry."""
        return self._call("reading the service catalog",
                          lambda: self._client.catalog.services(index=index, wait=wait))

    def health_state_raw(self, state: str = "any", *, index: int | None = None,
                         wait: str | None = None) -> tuple[int, Any]:
        """`GET /v1/health/state/<state>` (a blocking query with `index`): the checks in that
        state, of every node and service, as decoded JSON of any shape (entries are checked by
        the caller). Its index is the checks table's, whatever the state keeps
        (agent/consul/health_endpoint.go ChecksInState)."""
        return self._call(f"reading the checks in state {state!r}",
                          lambda: self._client.health.state(state, index=index, wait=wait))

    def catalog_nodes_raw(self) -> tuple[int, Any]:
        """`GET /v1/catalog/nodes`: every node, as decoded JSON of any shape."""
        return self._call("reading the catalog's nodes", lambda: self._client.catalog.nodes())

    def catalog_node_raw(self, node: str, *, index: int | None = None, wait: str | None = None,
                         filter_expr: str | None = None) -> tuple[int, Any]:
        """`GET /v1/catalog/node/<node>` (a blocking query with `index`): the node and its
        services by ID (`null` for a node Consul does not know), as decoded JSON of any shape.

        Since Consul 1.13 (consul#12399) the index is the node's own, moved by every write to
        the node or its services (agent/consul/state/catalog.go nodeServices:
        catalogNodeMaxIndex), and for an unknown node the last node deregistration's; a
        `filter_expr` selects among the services after that index was taken
        (agent/consul/catalog_endpoint.go NodeServices), so a filter that matches nothing
        answers the node alone at the same index.
        """
        return self._call(f"reading the services of node {node!r}",
                          lambda: self._client.catalog.node(node, index=index, wait=wait,
                                                            filter_expr=filter_expr))

    def kv_prefix_raw(self, prefix: str, *, index: int | None = None,
                      wait: str | None = None) -> tuple[int, Any]:
        """`GET /v1/kv/<prefix>?recurse` (a blocking query with `index`): every entry under the
        prefix (values base64-decoded), or None when there is none; entry checks are the caller's."""
        return self._call(f"reading the keys under {prefix!r}",
                          lambda: self._client.kv.get(prefix, index=index, wait=wait,
                                                      recurse=True))

    def _call(self, what: str, query: Any) -> tuple[int, Any]:
        import consul.exceptions  # imported already by __init__ (see there)

        try:
            idx, body = query()
        except consul.ACLPermissionDenied as exc:
            raise PermissionDenied(f"Consul refused {what} (the token is not shown)",
                                   status=403, body=self._redact(str(exc))) from None
        except (consul.exceptions.BadRequest, consul.NotFound, consul.exceptions.ClientError) as exc:
            raise ApiError(f"Consul refused {what}", body=self._redact(str(exc))) from None
        except consul.ConsulException as exc:
            # py-consul's own words for an answer that is not JSON (callback.py CB.json).
            if str(exc).startswith("Failed to decode JSON"):
                raise ApiError(f"Consul answered {what} with something that is not JSON",
                               body=self._redact(str(exc)[:500])) from None
            if str(exc).startswith("Missing index header"):
                raise ApiError(f"the answer to {what} has no X-Consul-Index header (is "
                               f"{self.address} a Consul agent?)") from None
            raise ConsulUnavailable(f"{what} failed", address=self.address,
                                    cause=self._redact(_reason(exc))) from None
        except (requests.RequestException, ValueError) as exc:
            raise ConsulUnavailable(f"{what} failed", address=self.address,
                                    cause=self._redact(_reason(exc))) from None
        try:
            return int(idx or 0), body
        except (TypeError, ValueError):
            raise ApiError(f"Consul answered {what} with a bad X-Consul-Index",
                           body=self._redact(str(idx)[:200])) from None

    def _shape(self, endpoint: str, expected: str, body: Any) -> ApiError:
        return ApiError(f"Consul answered GET {endpoint} with {type(body).__name__} where it "
                        f"answers {expected}", body=self._redact(repr(body)[:500]))

    def _redact(self, text: str) -> str:
        return redact(text, (self.config.token,))


def _reason(exc: BaseException) -> str:
    """A short cause: the exception kind and its innermost OS-level reason."""
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    reason = getattr(inner, "strerror", None) or str(inner) or type(inner).__name__
    return f"{type(exc).__name__}: {reason}"[:300]
