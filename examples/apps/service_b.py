"""service-b: calls service-a through its own sidecar (SERVICE_A_URL, the egress `/hi_a` route)."""

import json
import os
import urllib.request

from tiny import identity, serve


def answer(path: str) -> dict[str, object]:
    """Who we are, and what service-a said when called through the mesh."""
    url = os.environ["SERVICE_A_URL"]
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    with direct.open(url, timeout=5) as response:
        upstream = json.load(response)
    return {**identity("service-b"), "path": path, "called": url, "upstream": upstream}


if __name__ == "__main__":
    serve(answer)
