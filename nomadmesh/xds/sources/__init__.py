"""Where snapshots come from: Consul's catalog, or a snapshot file."""
