"""`archc summary SOURCE` of a model archc cannot write as a spec (E120/E121 from the import): the model's own module
tree, measured as torchinfo measures it, by running the model once on a batch of one shape-only tensor (PyTorch's
fake tensors: no data, no time): each module's output shape (forward hooks, its first call), its own parameters
(`numel`, each tensor counted once), and the MACs `torch.utils.flop_counter` counts (FLOPs / 2). A row for every leaf
module and every module with parameters of its own, in the order they run. No receptive field or memory estimate:
those are static passes over a spec."""

from __future__ import annotations

import shutil
import sys
from typing import Any

import torch
from torch import nn

from archc.errors import ArchError
from archc.ops import fmt_shape
from archc.tools.importer import Source, _fake_mode
from archc.tools.summary import _count, plain_table, rich_table

_COLUMNS = (("layer", "left"), ("module", "left"), ("output (batch of 1)", "right"), ("params", "right"), ("MACs", "right"))


def module_summary_data(source: Source, reason: ArchError) -> dict[str, Any]:
    """The summary of the model's modules as plain data (the `--json` output), with why there is no spec. A layer's
    shape is the whole tensor PyTorch gives for a batch of one (windows moved into the batch show as they are)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = source.model
    rows: dict[str, dict[str, Any]] = {}
    owned: set[int] = set()

    def own_params(module: nn.Module) -> int:
        count = 0
        for p in module.parameters(recurse=False):
            if id(p) not in owned:
                owned.add(id(p))
                count += p.numel()
        return count

    def hook(name: str) -> Any:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            if name in rows:
                return
            first = output[0] if isinstance(output, (tuple, list)) and output else output
            shape = list(first.shape) if isinstance(first, torch.Tensor) else None
            rows[name] = {"name": name or "(model)", "op": type(module).__name__, "shape": shape, "params": 0, "macs": 0}

        return record

    shown = {name: m for name, m in model.named_modules() if not list(m.children()) or list(m.parameters(recurse=False))}
    handles = [m.register_forward_hook(hook(name)) for name, m in shown.items()]
    try:
        with torch.no_grad(), _fake_mode():
            batch = torch.empty(1, *source.input_shape)
            with FlopCounterMode(display=False) as counter:
                out = model(batch)
    except Exception as e:  # the model's own error at this input size
        raise ArchError(
            "E121",
            f"{source.reference or source.name} raised {type(e).__name__} when run on 1×{'×'.join(map(str, source.input_shape))}: {e}",
            None,
            "give another input size with --input",
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    flops = counter.get_flop_counts()
    root = type(model).__name__
    for name, m in shown.items():
        if name in rows:
            rows[name]["params"] = own_params(m)
            rows[name]["macs"] = sum(flops.get(f"{root}.{name}" if name else root, {}).values()) // 2
    never = sum(p.numel() for name, m in shown.items() if name not in rows for p in m.parameters(recurse=False))
    first = out[0] if isinstance(out, (tuple, list)) else out
    return {
        "name": source.name,
        "source": source.reference or source.name,
        "imported": False,
        "reason": f"{reason.code}: {reason.message}",
        "input": list(source.input_shape),
        "output": list(first.shape[1:]) if isinstance(first, torch.Tensor) else None,  # a sample's, as a spec's summary
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "buffers": sum(b.numel() for b in model.buffers()),
        "macs": sum(flops.get("Global", {}).values()) // 2,
        "unused_params": never,
        "layers": list(rows.values()),
    }


def print_module_summary(source: Source, reason: ArchError) -> None:
    """The table on standard output, and on standard error why it is not a spec's."""
    data = module_summary_data(source, reason)
    print(
        f"warning: archc cannot write {data['source']} as a spec ({data['reason']}); this is its PyTorch module tree,"
        " run once on shape-only tensors: no receptive field or memory estimate",
        file=sys.stderr,
    )
    rows: list[tuple[str, ...]] = [
        (
            row["name"],
            row["op"],
            "×".join(map(str, row["shape"])) if row["shape"] is not None else "",
            f"{row['params']:,}" if row["params"] else "",
            _count(row["macs"]),
        )
        for row in data["layers"]
    ]
    title = f"{data['name']}  ({data['source']}, its PyTorch modules: not imported)"
    width = max(110, shutil.get_terminal_size().columns)
    out = [plain_table(title, rows, width, _COLUMNS) or rich_table(title, rows, width, _COLUMNS)]
    output = fmt_shape(tuple(data["output"])) if data["output"] is not None else "?"
    out.append(f"input: {fmt_shape(tuple(data['input']))}   output: {output}\n")
    out.append(f"params: {data['params']:,} (trainable {data['trainable_params']:,})   buffers: {data['buffers']:,}\n")
    out.append(f"MACs: {data['macs']:,} per image\n")
    if data["unused_params"]:
        out.append(f"({data['unused_params']:,} params belong to modules this input does not run)\n")
    sys.stdout.write("".join(out))
