"""Nomad JSON keys that nomadmesh accepts without modelling them, per model class.

`PASSTHROUGH` keys are user-settable fields kept verbatim in the object's `extra` map (so they
round-trip); `SERVER` keys are set by Nomad itself and kept aside in `Job.server`. Any other key is
an error, unlike Nomad, which silently drops what it does not know.
"""

from __future__ import annotations

from nomadmesh import model as m

PASSTHROUGH: dict[type, frozenset[str]] = {
    m.Job: frozenset({"Multiregion", "UI", "Stop", "ConsulToken", "VaultToken", "ConsulNamespace",
                      "VaultNamespace"}),
    m.Group: frozenset({"Disconnect", "Consul"}),
    m.Task: frozenset({"Consul", "DispatchPayload", "ScalingPolicies", "CSIPluginConfig",
                       "Identity", "Identities", "Actions", "Schedule"}),
    m.Resources: frozenset({"IOPS", "Networks", "Devices", "NUMA"}),
    m.Network: frozenset({"CNI"}),
    m.Service: frozenset({"Namespace", "Cluster", "Identity", "Weights", "Kind"}),
    m.Check: frozenset({"Notes", "Advertise"}),
    m.Scaling: frozenset({"ID", "Type", "Target", "Namespace", "CreateIndex", "ModifyIndex"}),
}

SERVER: dict[type, frozenset[str]] = {
    m.Job: frozenset({"Status", "StatusDescription", "Stable", "Version", "SubmitTime",
                      "CreateIndex", "ModifyIndex", "JobModifyIndex", "ParentID", "Dispatched",
                      "NomadTokenID", "VersionTag", "Payload", "DispatchIdempotencyToken"}),
}

# Where a passthrough block's HCL name differs from the generic snake_case of its JSON key.
PASSTHROUGH_HCL: dict[str, str] = {
    "CSIPluginConfig": "csi_plugin",
    "DispatchPayload": "dispatch_payload",
    "ScalingPolicies": "scaling",
    "Identities": "identity",
    "Actions": "action",
    "UI": "ui",
    "IOPS": "iops",
    "NUMA": "numa",
    "CNI": "cni",
    "Devices": "device",
}
