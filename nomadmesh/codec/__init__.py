"""Conversions of the job model: Nomad API JSON, HCL2, and Nomad's canonical defaults."""

from nomadmesh.codec.canonical import canonicalize

__all__ = ["canonicalize"]
