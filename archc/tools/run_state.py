"""The state of a training run that the command line reads without torch: `DIR/last.json` beside `DIR/last.pt`.

`archc train` writes it after each checkpoint (so it never runs ahead of `last.pt`); `archc train --resume` reads it
first and answers a run that is already finished without importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archc.errors import ArchError

STATE_FILE = "last.json"


def state_text(epoch: int, epochs: int, step: int, max_steps: int | None, partial: bool) -> str:
    """The file's text: epochs and steps done, the flags that bounded them, and whether the last epoch was cut short
    by `--max-steps` (`partial`)."""
    state = {"epoch": epoch, "epochs": epochs, "step": step, "max_steps": max_steps, "partial": partial}
    return json.dumps(state) + "\n"


def read_state(directory: Path) -> dict[str, Any] | None:
    """`DIR/last.json` if it is there and readable, else None (a checkpoint from before it existed)."""
    try:
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not all(isinstance(state.get(k), int) for k in ("epoch", "step")):
        return None
    return state


def finished_message(directory: Path, state: dict[str, Any], epochs: int, max_steps: int | None) -> str | None:
    """What `--resume` answers when the run in `directory` has nothing left to do under `--epochs` and
    `--max-steps`; None when it has. A run cut in the middle of an epoch by `--max-steps` cannot continue exactly
    (the checkpoint holds epochs, not positions in one): E101."""
    epoch, step = state["epoch"], state["step"]
    if epoch >= epochs or (max_steps is not None and step >= max_steps):
        bound = f"--epochs {epochs}" + (f", --max-steps {max_steps}" if max_steps is not None else "")
        return f"{directory}: run already finished at step {step} (epoch {epoch}; {bound}); nothing to do"
    if state.get("partial"):
        raise ArchError(
            "E101",
            f"the run in {directory} stopped at step {step}, inside epoch {epoch}, by --max-steps; it cannot continue exactly",
            None,
            "train afresh (without --resume, or with another --checkpoint DIR); --max-steps that ends on an epoch's last step"
            " leaves a run that --resume continues",
        )
    return None
