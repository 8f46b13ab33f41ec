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
# boxes (VGG's and MobileNet's `features`, MNASNet's `layers`, the D2L model's `net`), or depth 2 stays compact
# (ResNet stages as blocks and runs).
DEPTH_2 = {
    "alexnet",
    "convnext_base",
    "convnext_large",
    "convnext_small",
    "convnext_tiny",
    "d2l_resnet18",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
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
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "preact_resnet18",
    "regnet_x_16gf",
    "regnet_x_1_6gf",
    "regnet_x_32gf",
    "regnet_x_3_2gf",
    "regnet_x_400mf",
    "regnet_x_800mf",
    "regnet_x_8gf",
    "regnet_y_128gf",
    "regnet_y_16gf",
    "regnet_y_1_6gf",
    "regnet_y_32gf",
    "regnet_y_3_2gf",
    "regnet_y_400mf",
    "regnet_y_800mf",
    "regnet_y_8gf",
    "resnet101",
    "resnet152",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "resnext50_32x4d",
    "squeezenet1_0",
    "squeezenet1_1",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "wide_resnet101_2",
    "wide_resnet50_2",
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
