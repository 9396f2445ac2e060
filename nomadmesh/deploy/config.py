"""Where Nomad is and how to talk to it: the Nomad CLI's environment, explicit arguments winning."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from nomadmesh.errors import InputError

DEFAULT_ADDRESS = "http://127.0.0.1:4646"
DEFAULT_TIMEOUT = 10.0

_TRUE = frozenset({"1", "t", "true", "yes", "on"})
_FALSE = frozenset({"0", "f", "false", "no", "off", ""})


def parse_bool(name: str, value: str) -> bool:
    """A boolean environment value as Go's strconv.ParseBool reads it (plus yes/no/on/off)."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InputError(f"{name}={value!r} is not a boolean (use true or false)")


def normalize_address(address: str) -> str:
    """`host:port` gets `http://`, a trailing slash goes; the Nomad CLI accepts both forms."""
    address = address.strip().rstrip("/")
    if not address:
        raise InputError("the Nomad address is empty")
    if "://" not in address:
        address = "http://" + address
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or (
            port is not None and not 0 < port < 65536):
        raise InputError(f"the Nomad address {address!r} is not http(s)://host[:port]")
    return address


@attrs.frozen(kw_only=True)
class NomadConfig:
    """Connection settings for one Nomad API; the token is never part of the repr."""

    address: str = DEFAULT_ADDRESS
    token: str | None = attrs.field(default=None, repr=False)
    http_auth: str | None = attrs.field(default=None, repr=False)
    namespace: str | None = None
    region: str | None = None
    ca_cert: str | None = None
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    tls_server_name: str | None = None
    skip_verify: bool = False
    timeout: float = DEFAULT_TIMEOUT

    @property
    def has_token(self) -> bool:
        """Whether requests carry an ACL token (the token itself is never shown)."""
        return bool(self.token)

    @property
    def verify(self) -> bool | str:
        """The `verify` value for requests: a CA file or directory, True, or False if skipped."""
        if self.skip_verify:
            return False
        return self.ca_cert or self.ca_path or True

    @property
    def cert(self) -> tuple[str, str] | None:
        """The client certificate and key for mutual TLS, when both are configured."""
        if self.client_cert and self.client_key:
            return (self.client_cert, self.client_key)
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **explicit: object) -> NomadConfig:
        """Settings from NOMAD_* variables; explicit keyword arguments that are not None win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for name, var in _ENV.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[name] = parse_bool(var, raw) if name == "skip_verify" else raw
        unknown = set(explicit) - set(attrs.fields_dict(cls))
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in explicit.items() if v is not None})
        if "address" in values:
            values["address"] = normalize_address(str(values["address"]))
        if bool(values.get("client_cert")) != bool(values.get("client_key")):
            raise InputError("a client certificate needs its key (NOMAD_CLIENT_CERT and "
                             "NOMAD_CLIENT_KEY go together)")
        return cls(**values)  # type: ignore[arg-type]


_ENV = {
    "address": "NOMAD_ADDR",
    "token": "NOMAD_TOKEN",
    "http_auth": "NOMAD_HTTP_AUTH",
    "namespace": "NOMAD_NAMESPACE",
    "region": "NOMAD_REGION",
    "ca_cert": "NOMAD_CACERT",
    "ca_path": "NOMAD_CAPATH",
    "client_cert": "NOMAD_CLIENT_CERT",
    "client_key": "NOMAD_CLIENT_KEY",
    "tls_server_name": "NOMAD_TLS_SERVER_NAME",
    "skip_verify": "NOMAD_SKIP_VERIFY",
}
