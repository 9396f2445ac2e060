"""Secrets out of quoted text: tokens, passwords in URLs, and headers that servers echo back."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "<redacted>"

# A header a proxy or server may echo (`X-Nomad-Token: ...`, Go's `map[X-Nomad-Token:[...]]`,
# JSON `"Authorization": "Basic ..."`): the name, its separator, then the value up to the end of
# the value's quoting, bracket or line.
_HEADER = re.compile(
    r"(?i)\b(x-nomad-token|x-consul-token|x-vault-token|authorization|proxy-authorization|"
    r"cookie|set-cookie|nomad_token|consul_http_token)(\"?\s*[:=]\s*\[?\"?)"
    r"((?:basic|bearer)\s+)?([^\"\]\r\n,;&]+)")
# `scheme://user:password@host`: the password goes, the user stays (it says which account).
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]+):([^\s/@]+)@")
# `?token=...` style query parameters.
_QUERY = re.compile(r"(?i)([?&](?:token|access_token|password|secret)=)([^&\s\"']+)")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every known secret, echoed credential header and URL password replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{REDACTED}", text)
    text = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)
    return _QUERY.sub(rf"\1{REDACTED}", text)


def redact_url(url: str) -> str:
    """A URL safe to print: a password in its user info or query is replaced."""
    return redact(url)
