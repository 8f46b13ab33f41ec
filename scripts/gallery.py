"""Render the diagram gallery: docs/gallery/<spec>.svg (folded) and <spec>_full.svg (every layer) for each spec in
specs/, and docs/gallery/README.md listing them. Run from anywhere: `.venv/bin/python scripts/gallery.py`.
The output is deterministic (the same specs and Graphviz version give the same bytes)."""

from __future__ import annotations

import sys
from pathlib import Path

from archc.compiler import compile_spec
from archc.emit.dot import render_bytes, render_dot

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GALLERY = ROOT / "docs" / "gallery"

# The folded depth that reads best: 1 (stages, or Inception modules) unless depth 1 hides everything in one or two
# boxes (VGG's `features`, the D2L model's `net`), or depth 2 stays compact (ResNet stages as blocks and runs).
DEPTH_2 = {
    "alexnet",
    "d2l_resnet18",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2_l",
    "efficientnet_v2_m",
    "efficientnet_v2_s",
    "inception_v4",
    "lenet5",
    "preact_resnet18",
    "regnet_x_400mf",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "xception_cifar",
}


def folded_depth(name: str) -> int:
    return 2 if name in DEPTH_2 else 1


def _write(path: Path, data: bytes) -> None:
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def main() -> int:
    GALLERY.mkdir(parents=True, exist_ok=True)
    rows = []
    written: set[Path] = set()
    for spec in sorted(SPECS.glob("*.arch")):
        compiled = compile_spec(spec)
        name, depth = spec.stem, folded_depth(spec.stem)
        folded, full = render_dot(compiled, depth), render_dot(compiled, None)
        for path, dot_text in ((GALLERY / f"{name}.svg", folded), (GALLERY / f"{name}_full.svg", full)):
            _write(path, render_bytes(dot_text, "svg"))
            written.add(path)
        layers = len(compiled.arch.nodes) - 1
        same = " (all layers)" if folded == full else ""
        rows.append(f"| [{name}](../../specs/{spec.name}) | {layers} | [depth {depth}]({name}.svg){same} | [full]({name}_full.svg) |")
        print(f"{spec.relative_to(ROOT)} -> docs/gallery/{name}.svg, {name}_full.svg")
    for stale in sorted(set(GALLERY.glob("*.svg")) - written):
        stale.unlink()
    readme = "\n".join(
        [
            "# Diagram gallery",
            "",
            "Every spec of the zoo drawn by `archc.emit.dot` (see [diagrams.md](../diagrams.md)): folded to depth 1 or 2,",
            "whichever reads best, and in full, every layer. Regenerate with `.venv/bin/python scripts/gallery.py`.",
            "",
            "| spec | layers | folded | full |",
            "|---|---:|---|---|",
            *rows,
            "",
        ]
    )
    _write(GALLERY / "README.md", readme.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
