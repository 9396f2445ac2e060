"""edge-router: the mesh's front door is its sidecar's egress; this app only lists the routes."""

import os

from tiny import identity, serve


def answer(path: str) -> dict[str, object]:
    """The upstream URLs the mesh gave this group (one `<SERVICE>_URL` per route)."""
    routes = {k: v for k, v in os.environ.items() if k.endswith("_URL") and "egress" not in k}
    return {**identity("edge-router"), "path": path, "routes": routes}


if __name__ == "__main__":
    serve(answer)
