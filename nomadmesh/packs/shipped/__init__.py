"""The packs installed with nomadmesh, each registered as an entry point of the `nomadmesh.packs`
group (pyproject.toml), so that `nomadmesh pack list` shows them from any directory."""
