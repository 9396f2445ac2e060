"""Volumes: what a group claims (host and CSI volumes) and where its tasks mount them
(api/tasks.go, api/csi.go)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import attrs

from nomadmesh.model import _base
from nomadmesh.model._base import BLOCK, BOOL, STR, STRS, evolve, field, go, label, strings, to_tuple


@_base.frozen(slots=False, repr=False)
class CSIMountOptions:
    """File system and mount flags of a CSI volume (`mount_options` block)."""

    _go: ClassVar[str] = "CSIMountOptions"

    fs_type: str | None = field("FSType")
    mount_flags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                               metadata=go("MountFlags", STRS))


@_base.frozen(slots=False, repr=False)
class VolumeRequest:
    """A host or CSI volume the group claims (`volume "name"` block)."""

    _go: ClassVar[str] = "VolumeRequest"

    name: str = label("Name")
    type: str | None = field("Type")
    source: str | None = field("Source")
    read_only: bool | None = field("ReadOnly", BOOL)
    sticky: bool | None = field("Sticky", BOOL)
    access_mode: str | None = field("AccessMode")
    attachment_mode: str | None = field("AttachmentMode")
    mount_options: CSIMountOptions | None = field("MountOptions", BLOCK, block=CSIMountOptions)
    per_alloc: bool | None = field("PerAlloc", BOOL)


@_base.frozen(slots=False, repr=False)
class VolumeMount:
    """Where a group volume appears inside the task (`volume_mount` block)."""

    _go: ClassVar[str] = "VolumeMount"

    volume: str | None = field("Volume", STR, ptr=True)
    destination: str | None = field("Destination", STR, ptr=True)
    read_only: bool | None = field("ReadOnly", BOOL, ptr=True)
    propagation_mode: str | None = field("PropagationMode", STR, ptr=True)
    selinux_label: str | None = field("SELinuxLabel", STR, ptr=True)

    def canonicalize(self) -> VolumeMount:
        """api/tasks.go:477 VolumeMount.Canonicalize: private propagation, read-write."""
        return evolve(
            self,
            propagation_mode="private" if self.propagation_mode is None else self.propagation_mode,
            read_only=False if self.read_only is None else self.read_only,
            selinux_label="" if self.selinux_label is None else self.selinux_label,
        )


def volume_mounts(value: Iterable[VolumeMount] | None) -> tuple[VolumeMount, ...]:
    """Converter: any iterable of volume mounts becomes a tuple."""
    return to_tuple(value)
