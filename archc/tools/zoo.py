"""`archc zoo`: every spec in a directory with its metadata, parameters and MACs, as a table or as a chart.

The chart (`zoo_chart_svg`) puts every spec with a published top-1 on one plane: MACs per image (log scale) against
top-1 accuracy, bubble area proportional to parameters, colour by family. As in the PyTorch emitter, the Python side
computes every coordinate and the template (emit/templates/zoo_chart.svg.j2) only lays out text; the same specs give
the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from archc.compiler import compile_spec
from archc.passes.macs import count_macs

TEMPLATES = Path(__file__).parent.parent / "emit" / "templates"


@dataclass(frozen=True)
class ZooEntry:
    """One spec of the zoo."""

    name: str
    spec: Path
    meta: dict[str, Any]
    input_shape: list[int]
    params: int
    macs: int  # multiply-accumulates per image on the eval-mode path (archc/passes/macs.py)


def zoo_entries(spec_dir: Path) -> list[ZooEntry]:
    """Compile every `*.arch` in `spec_dir` (not its lib/) and collect what the table shows, sorted by name."""
    entries = []
    for path in sorted(spec_dir.glob("*.arch")):
        compiled = compile_spec(path)
        arch = compiled.arch
        entries.append(ZooEntry(path.stem, path, arch.meta, arch.input_shape, compiled.params.params, count_macs(arch).macs))
    return entries


def markdown_table(entries: list[ZooEntry], spec_link: str = "../specs", generated_link: str = "../generated") -> str:
    """The zoo as a Markdown table, one row per spec, with links to the spec and its generated module."""
    lines = [
        "| spec | paper | year | reference | input | params | GMACs | top-1 | generated |",
        "|---|---|---:|---|---|---:|---:|---:|---|",
    ]
    for e in entries:
        top1 = e.meta.get("top1")
        lines.append(
            f"| [`{e.name}`]({spec_link}/{e.name}.arch) | {e.meta.get('paper', '')} | {e.meta.get('year', '')} "
            f"| {e.meta.get('reference', '')} | {'×'.join(str(d) for d in e.input_shape)} | {e.params:,} "
            f"| {e.macs / 1e9:.2f} | {'' if top1 is None else f'{top1:g}'} | [`{e.name}.py`]({generated_link}/{e.name}.py) |"
        )
    return "\n".join(lines) + "\n"


# --- the chart -------------------------------------------------------------------------------------------------

# Families in legend order: (legend name, colour). A spec's family is the first of FAMILY_MATCH whose words occur
# in its name, so inception_resnet_v2 is an Inception and xception is not.
FAMILIES: dict[str, tuple[str, str]] = {
    "resnet": ("ResNet / ResNeXt", "#4e79a7"),
    "vgg": ("VGG", "#f28e2b"),
    "inception": ("Inception / GoogLeNet", "#59a14f"),
    "xception": ("Xception", "#b07aa1"),
    "alexnet": ("AlexNet", "#e15759"),
    "mobilenet": ("MobileNet / MnasNet", "#76b7b2"),
    "efficientnet": ("EfficientNet", "#edc948"),
    "regnet": ("RegNet", "#ff9da7"),
    "densenet": ("DenseNet / SqueezeNet", "#9c755f"),
    "convnext": ("ConvNeXt", "#bab0ac"),
    "other": ("other", "#8c8c8c"),
}
FAMILY_MATCH: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("xception", ("xception",)),
    ("inception", ("inception", "googlenet")),
    ("resnet", ("resnet", "resnext")),
    ("vgg", ("vgg",)),
    ("alexnet", ("alexnet",)),
    ("mobilenet", ("mobilenet", "mnasnet")),
    ("efficientnet", ("efficientnet",)),
    ("regnet", ("regnet",)),
    ("densenet", ("densenet", "squeezenet")),
    ("convnext", ("convnext",)),
)

WIDTH, HEIGHT = 1060, 720
PLOT_LEFT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM = 78.0, 86.0, 830.0, 620.0
LEGEND_X = 856.0
R_MAX = 24.0  # radius of the largest bubble, px
LABEL_FONT = 12.0  # px, monospace: every character 0.6 em wide
CHAR_W = 0.6 * LABEL_FONT
LABEL_H = 14.0
LABEL_ASCENT = 10.0  # baseline below the top of a label's box
FOOTNOTE_CHARS = 150  # characters per footnote line (12 px sans-serif over the chart's width)


def family(name: str) -> str:
    """The colour family of a spec, from its name."""
    for key, words in FAMILY_MATCH:
        if any(w in name for w in words):
            return key
    return "other"


def _num(v: float) -> str:
    """A coordinate as the SVG writes it: one decimal, never `-0.0`."""
    text = f"{v:.1f}"
    return "0.0" if text == "-0.0" else text


def _stops(lo: float, hi: float, mantissas: tuple[int, ...]) -> list[float]:
    """The values m·10^k (m in `mantissas`) within [lo, hi], ascending."""
    out = []
    for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in mantissas:
            v = float(m) * 10.0**k
            if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9):
                out.append(v)
    return out


def _stop_below(v: float, strict: bool = True) -> float:
    """The largest of 1, 2, 3, 5 × 10^k below `v` (or at it, if not `strict`)."""
    return max(s for s in _stops(v / 20, v * 2, (1, 2, 3, 5)) if s < v * (1 - 1e-9) or (not strict and s <= v * (1 + 1e-9)))


def _stop_above(v: float, strict: bool = True) -> float:
    """The smallest of 1, 2, 3, 5 × 10^k above `v` (or at it, if not `strict`)."""
    return min(s for s in _stops(v / 2, v * 20, (1, 2, 3, 5)) if s > v * (1 + 1e-9) or (not strict and s >= v * (1 - 1e-9)))


def _darker(colour: str, keep: float = 0.6) -> str:
    """`#rrggbb` mixed with black: a family's colour for text."""
    r, g, b = (round(int(colour[k : k + 2], 16) * keep) for k in (1, 3, 5))
    return f"#{r:02x}{g:02x}{b:02x}"


def _tick_text(v: float) -> str:
    return f"{v:g}"


def _params_text(p: float) -> str:
    if p >= 1e9:
        return f"{p / 1e9:g}B"
    if p >= 1e6:
        return f"{p / 1e6:g}M"
    return f"{p / 1e3:g}k"


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


@dataclass(frozen=True)
class _Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlap(self, other: _Box) -> float:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0.0

    def distance(self, x: float, y: float) -> float:
        """From the point to the nearest point of the box (0 inside it)."""
        return math.hypot(x - min(max(x, self.x0), self.x1), y - min(max(y, self.y0), self.y1))

    def seen_from(self, x: float, y: float) -> float:
        """How far the box looks from the point: the mean of the distances to its nearest point and to its centre."""
        return (self.distance(x, y) + math.hypot(x - (self.x0 + self.x1) / 2, y - (self.y0 + self.y1) / 2)) / 2

    def inside(self, other: _Box) -> bool:
        return self.x0 >= other.x0 and self.y0 >= other.y0 and self.x1 <= other.x1 and self.y1 <= other.y1


@dataclass(frozen=True)
class _Bubble:
    entry: ZooEntry
    top1: float
    cx: float
    cy: float
    r: float

    def square(self) -> _Box:
        """The square of the circle's area about its centre: what a label's overlap with the bubble is scored on."""
        half = self.r * math.sqrt(math.pi) / 2
        return _Box(self.cx - half, self.cy - half, self.cx + half, self.cy + half)


# Where a label may go about its bubble, in order of preference: right, left, the diagonals, above and below
# (centred, or shifted to start or end over the bubble's centre). (dx, dy): the direction; the third number shifts
# a label above or below sideways.
_DIAG = math.sqrt(0.5)
_DIRECTIONS = (
    (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (_DIAG, -_DIAG, 0.0), (_DIAG, _DIAG, 0.0), (-_DIAG, -_DIAG, 0.0), (-_DIAG, _DIAG, 0.0),
    (0.0, -1.0, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 1.0), (0.0, 1.0, 1.0), (0.0, -1.0, -1.0), (0.0, 1.0, -1.0),
)  # fmt: skip
_GAPS = (3.0, 9.0, 16.0, 25.0, 36.0, 50.0, 66.0)
_LEADER_GAP = 8.0
_CLEARANCE = (
    8.0  # px: a label stays this much nearer its own bubble than any other  # labels further than this from their bubble get a leader line
)


def _candidates(i: int, bubbles: list[_Bubble], squares: list[_Box], plot: _Box) -> list[tuple[float, _Box, float]]:
    """The positions a bubble's label may take, inside the plot, each with its cost apart from other labels: the
    overlap with other bubbles, the ambiguity (a label nearer another bubble than its own reads as that bubble's)
    and the distance from its own bubble, nearer and preferred directions cheaper."""
    b = bubbles[i]
    w, h = len(b.entry.name) * CHAR_W + 2.0, LABEL_H
    out = []
    for gap in _GAPS:
        for rank, (dx, dy, shift) in enumerate(_DIRECTIONS):
            px, py = b.cx + dx * (b.r + gap), b.cy + dy * (b.r + gap)
            x0 = px if dx > 0.3 else px - w if dx < -0.3 else px - w / 2 + shift * (w / 2 - 8)
            y0 = py - h if dy < -0.3 else py if dy > 0.3 else py - h / 2
            box = _Box(x0, y0, x0 + w, y0 + h)
            if not box.inside(plot):
                continue
            bubble_overlap = sum(box.overlap(s) for j, s in enumerate(squares) if j != i)
            own = box.seen_from(b.cx, b.cy) - b.r
            ambiguity = sum(max(0.0, own + _CLEARANCE - (box.seen_from(o.cx, o.cy) - o.r)) for j, o in enumerate(bubbles) if j != i)
            out.append((bubble_overlap + 15.0 * ambiguity + 3.0 * gap + 2.0 * rank, box, gap))
    if not out:  # nowhere inside the plot: right of the bubble
        out.append((0.0, _Box(b.cx + b.r + 3, b.cy - h / 2, b.cx + b.r + 3 + w, b.cy + h / 2), 3.0))
    return out


def _place_labels(bubbles: list[_Bubble], plot: _Box) -> list[dict[str, str]]:
    """Label placement: greedy, in order of MACs, then a few sweeps in which each label moves to its cheapest
    candidate given all the others (overlapping another label costs most). Deterministic: fixed orders, and the
    first of equal costs wins."""
    squares = [b.square() for b in bubbles]
    candidates = [_candidates(i, bubbles, squares, plot) for i in range(len(bubbles))]
    order = sorted(range(len(bubbles)), key=lambda i: (bubbles[i].entry.macs, -bubbles[i].top1, bubbles[i].entry.name))
    chosen: dict[int, tuple[float, _Box, float]] = {}

    def best(i: int) -> tuple[float, _Box, float]:
        others = [c[1] for j, c in chosen.items() if j != i]
        return min(candidates[i], key=lambda c: c[0] + 40.0 * sum(c[1].overlap(o) for o in others))

    for i in order:
        chosen[i] = best(i)
    for _ in range(4):
        moved = False
        for i in order:
            new = best(i)
            if new is not chosen[i]:
                chosen[i], moved = new, True
        if not moved:
            break
    out = []
    for i, b in enumerate(bubbles):
        _, box, gap = chosen[i]
        colour = _darker(FAMILIES[family(b.entry.name)][1])
        label = {"name": b.entry.name, "x": _num(box.x0 + 1.0), "y": _num(box.y0 + LABEL_ASCENT), "colour": colour, "leader": ""}
        if gap > _LEADER_GAP:
            nx, ny = min(max(b.cx, box.x0), box.x1), min(max(b.cy, box.y0), box.y1)
            d = math.hypot(nx - b.cx, ny - b.cy)
            if d > b.r + 4:
                ex, ey = b.cx + (nx - b.cx) * b.r / d, b.cy + (ny - b.cy) * b.r / d
                label["leader"] = f"M{_num(ex)} {_num(ey)}L{_num(nx)} {_num(ny)}"
        out.append(label)
    return out


def zoo_chart_svg(entries: list[ZooEntry]) -> str:
    """Every entry with a published top-1 as a bubble: x = MACs per image (log), y = top-1, area ∝ parameters.

    Entries without a top-1 are named in a footnote. The output depends on the entries alone (same bytes)."""
    shown = sorted((e for e in entries if e.meta.get("top1") is not None), key=lambda e: e.name)
    missing = sorted(e.name for e in entries if e.meta.get("top1") is None)
    plot = _Box(PLOT_LEFT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM)
    plot_w, plot_h = plot.x1 - plot.x0, plot.y1 - plot.y0

    macs = [max(e.macs, 1) / 1e9 for e in shown] or [1.0]
    top1s = [float(e.meta["top1"]) for e in shown] or [70.0]
    max_params = max((e.params for e in shown), default=1)

    def radius(params: int) -> float:
        return R_MAX * math.sqrt(params / max_params) if max_params > 0 else 0.0

    # The axes: the x domain ends on 1, 2, 3 or 5 × 10^k, the y domain on a multiple of the tick step, each widened
    # until every bubble lies within.
    span = max(top1s) - min(top1s)
    step = 5.0 if span > 12 else 2.0 if span > 4 else 1.0
    x_lo, x_hi = _stop_below(min(macs), strict=False), _stop_above(max(macs), strict=False)
    if x_hi <= x_lo:
        x_hi = _stop_above(x_lo)
    y_lo, y_hi = math.floor(min(top1s) / step) * step, math.ceil(max(top1s) / step) * step
    if y_hi <= y_lo:
        y_hi = y_lo + step

    def px(g: float) -> float:
        return plot.x0 + (math.log10(g) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo)) * plot_w

    def py(t: float) -> float:
        return plot.y1 - (t - y_lo) / (y_hi - y_lo) * plot_h

    for _ in range(8):
        grown = False
        for e, g, t in zip(shown, macs, top1s, strict=False):
            r = radius(e.params) + 2
            if px(g) - r < plot.x0:
                x_lo, grown = _stop_below(x_lo), True
            if px(g) + r > plot.x1:
                x_hi, grown = _stop_above(x_hi), True
            if py(t) + r > plot.y1:
                y_lo, grown = y_lo - step, True
            if py(t) - r < plot.y0:
                y_hi, grown = y_hi + step, True
            if grown:
                break
        if not grown:
            break

    bubbles = [_Bubble(e, t, px(g), py(t), radius(e.params)) for e, g, t in zip(shown, macs, top1s, strict=False)]

    major = _stops(x_lo, x_hi, (1, 2, 5))
    minor = [v for v in _stops(x_lo, x_hi, tuple(range(1, 10))) if v not in major]
    x_ticks = [{"x": _num(px(v)), "text": _tick_text(v)} for v in major]
    x_minor = [_num(px(v)) for v in minor]
    y_values = [y_lo + k * step for k in range(round((y_hi - y_lo) / step) + 1)]
    y_ticks = [{"y": _num(py(v)), "text": f"{v:g}"} for v in y_values]

    drawn = sorted(bubbles, key=lambda b: (-b.entry.params, b.entry.name))  # small bubbles on top
    circles = []
    for b in drawn:
        e = b.entry
        colour = FAMILIES[family(e.name)][1]
        circles.append(
            {
                "name": e.name,
                "cx": _num(b.cx),
                "cy": _num(b.cy),
                "r": _num(b.r),
                "colour": colour,
                "tip": f"{e.name}: {e.macs / 1e9:.2f} GMACs, top-1 {b.top1:g}%, {e.params / 1e6:.1f}M params",
            }
        )

    # Legend: the families on the chart, then reference bubbles for the size scale.
    present = {family(e.name) for e in shown}
    families = []
    y = PLOT_TOP + 22
    for key, (title, colour) in FAMILIES.items():
        if key in present:
            families.append(
                {"x": _num(LEGEND_X + 8), "y": _num(y), "tx": _num(LEGEND_X + 22), "ty": _num(y + 4), "colour": colour, "text": title}
            )
            y += 20
    size_title_y = y + 18
    # Reference bubbles in a row, bottom-aligned: the largest 1-2-5 value within the largest spec, a tenth of it,
    # and one between.
    ref_values: list[float] = []
    if shown and max_params >= 10:
        top = _stops(max_params / 10, max_params, (1, 2, 5))[-1]
        stops = _stops(top / 10, top, (1, 2, 5))
        ref_values = [stops[0], stops[-2], stops[-1]]
    elif shown and max_params > 0:
        ref_values = [float(max_params)]
    base_y = size_title_y + 14 + 2 * radius(int(ref_values[-1])) if ref_values else 0.0
    x = LEGEND_X + 2
    sizes = []
    for v in ref_values:
        r = radius(int(v))
        sizes.append({"cx": _num(x + r), "cy": _num(base_y - r), "r": _num(r), "ty": _num(base_y + 16), "text": _params_text(v)})
        x += 2 * r + 16
    notes = ["top-1: the reference weights' published ImageNet-1k accuracy (the spec's meta); MACs and parameters: archc, from the specs"]
    if missing:
        notes.append("not shown: no published top-1: " + ", ".join(missing))
    lines = [line for note in notes for line in _wrap(note, FOOTNOTE_CHARS)]
    foot_lines = [{"y": _num(HEIGHT - 16 * len(lines) + 16 * k - 6), "text": t} for k, t in enumerate(lines)]

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=True
    )
    return env.get_template("zoo_chart.svg.j2").render(
        width=WIDTH,
        height=HEIGHT,
        title="Published ImageNet top-1 against compute",
        subtitle=f"{len(shown)} of {len(entries)} specs (those with a published top-1) · MACs per image at the spec's input "
        "size, as archc counts them · bubble area ∝ parameters",
        plot={"x0": _num(plot.x0), "y0": _num(plot.y0), "x1": _num(plot.x1), "y1": _num(plot.y1), "w": _num(plot_w), "h": _num(plot_h)},
        x_ticks=x_ticks,
        x_minor=x_minor,
        y_ticks=y_ticks,
        x_label={"x": _num(plot.x0 + plot_w / 2), "y": _num(plot.y1 + 42), "text": "GMACs per image (log scale)"},
        y_label={"x": _num(24.0), "y": _num(plot.y0 + plot_h / 2), "text": "ImageNet top-1 accuracy (%)"},
        circles=circles,
        labels=_place_labels(bubbles, plot),
        legend={"x": _num(LEGEND_X), "family_y": _num(PLOT_TOP + 2), "size_y": _num(size_title_y)},
        families=families,
        sizes=sizes,
        footnote=foot_lines,
    )


def write_zoo_chart(spec_dir: Path, path: Path) -> None:
    """`archc zoo --chart FILE.svg`: the chart of every spec in `spec_dir`, written to `path`."""
    path.write_text(zoo_chart_svg(zoo_entries(spec_dir)), encoding="utf-8")
