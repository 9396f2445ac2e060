"""The HCL-to-JSON name mapping, rendered from the model's field tables (for docs and users)."""

from __future__ import annotations

from nomadmesh import model as m
from nomadmesh.model._base import Kind, specs

# Classes in jobspec order, with the HCL block each one is.
BLOCKS: tuple[tuple[str, type], ...] = (
    ("job", m.Job), ("group", m.Group), ("task", m.Task), ("network", m.Network),
    ("port", m.Port), ("dns", m.DNSConfig), ("service", m.Service), ("check", m.Check),
    ("check_restart", m.CheckRestart), ("resources", m.Resources), ("logs", m.LogConfig),
    ("lifecycle", m.Lifecycle), ("template", m.Template), ("wait", m.TemplateWait),
    ("change_script", m.ChangeScript), ("artifact", m.Artifact), ("volume", m.VolumeRequest),
    ("volume_mount", m.VolumeMount), ("vault", m.Vault), ("restart", m.RestartPolicy),
    ("reschedule", m.ReschedulePolicy), ("update", m.UpdateStrategy),
    ("migrate", m.MigrateStrategy), ("ephemeral_disk", m.EphemeralDisk),
    ("scaling", m.Scaling), ("constraint", m.Constraint), ("affinity", m.Affinity),
    ("spread", m.Spread), ("target", m.SpreadTarget), ("periodic", m.Periodic),
    ("parameterized", m.Parameterized),
)

_KIND_NOTES = {
    Kind.DURATION: "duration: Go string in HCL, integer nanoseconds in JSON",
    Kind.BLOCK: "block",
    Kind.BLOCKS: "repeated block",
    Kind.MAP: "map",
    Kind.ANY: "free-form",
    Kind.STRS: "list of strings",
}


def mapping_markdown() -> str:
    """A Markdown table per block: HCL name, Python field, Nomad JSON key, kind."""
    out: list[str] = []
    for block, cls in BLOCKS:
        out.append(f"### `{block}` — `{cls.__name__}`\n")
        out.append("| HCL | Python | JSON | kind |")
        out.append("| --- | --- | --- | --- |")
        for s in specs(cls):
            hcl = f'label (`{block} "…"`)' if s.label else f"`{s.hcl}`"
            api = ("`ReservedPorts` / `DynamicPorts`" if s.api == "*ports" else f"`{s.api}`")
            kind = _KIND_NOTES.get(s.kind, s.kind.value)
            out.append(f"| {hcl} | `{s.name}` | {api} | {kind} |")
        out.append("")
    return "\n".join(out)


START, END = "<!-- mapping:start -->", "<!-- mapping:end -->"


def with_mapping(doc: str) -> str:
    """`doc` with the text between the mapping markers replaced by the current table."""
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{mapping_markdown()}\n{END}{tail}"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
        target.write_text(with_mapping(target.read_text()))
    else:
        print(mapping_markdown())
