"""The HCL codec being replaced by `nomadmesh.hcl` (the model and Nomad JSON live in nomadmesh.model)."""
