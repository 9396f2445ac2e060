"""The HCL / Python / JSON name table of every model class, rendered from the field tables.

`python -m nomadmesh.model.names docs/model.md` rewrites the table between the mapping markers;
a test keeps the page current.
"""

from __future__ import annotations

from nomadmesh.model._base import Kind, model_classes, specs
from nomadmesh.model.job import Job

_KIND_NOTES = {
    Kind.DURATION: "duration: Go string in HCL, integer nanoseconds in JSON",
    Kind.BLOCK: "block",
    Kind.BLOCKS: "repeated block (JSON list)",
    Kind.BLOCK_MAP: "labelled blocks (JSON object keyed by label)",
    Kind.MAP: "map of strings (JSON object)",
    Kind.MAP_STRS: "map of string lists (JSON object)",
    Kind.ANY: "free-form (JSON object)",
    Kind.STRS: "list of strings",
    Kind.INTS: "list of integers",
}


def blocks() -> list[tuple[str, type]]:
    """Every model class with the HCL block name it is first reached by, in jobspec order."""
    names: dict[type, str] = {Job: "job"}
    for cls in model_classes(Job):
        for s in specs(cls):
            if s.block is not None and s.block not in names:
                names[s.block] = s.hcl or s.name
    return [(names[cls], cls) for cls in model_classes(Job)]


def mapping_markdown() -> str:
    """A Markdown table per block: HCL name, Python field, Nomad JSON key, kind."""
    out: list[str] = []
    for block, cls in blocks():
        out.append(f"### `{block}` — `{cls.__name__}` (api.{cls._go})\n")  # type: ignore[attr-defined]
        specs_ = specs(cls)
        if not specs_:
            out.append("No fields: the block's presence is its meaning.\n")
            continue
        out.append("| HCL | Python | JSON | kind |")
        out.append("| --- | --- | --- | --- |")
        for s in specs_:
            hcl = f"`{s.hcl}`" if s.hcl else "(JSON only)"
            if s.label:
                hcl = f'label (`{block} "…"`)'
            api = "`ReservedPorts` / `DynamicPorts`" if s.api == "*ports" else f"`{s.api}`"
            kind = _KIND_NOTES.get(s.kind, s.kind.value) + ("" if not s.ptr else ", pointer")
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
