"""`archc train`: train a spec on a dataset, on one process or under `torchrun` with DistributedDataParallel.

The only module of archc's command line that imports torch (and torchvision, scikit-learn, matplotlib), lazily:
the CLI imports it inside the `train` command. The model is built in memory (`archc.api`), with `num_classes`
following the data; the data adapts to the spec's input (resized, grey <-> RGB). One epoch is a pass over the
training split, then a validation pass; rank 0 alone prints, writes metrics, curves and checkpoints.

Exactness of `--resume`: the shuffle order of an epoch is a function of the seed and the epoch (as
DistributedSampler's `set_epoch`), the learning rate a function of the epoch and `--epochs`, and the checkpoint
holds the model, optimizer, scheduler, gradient scaler and every rank's RNG states; so a run resumed from epoch k
with the same `--epochs` computes what the uninterrupted run would have.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

from archc import __version__
from archc.api import load_module
from archc.compiler import compile_spec
from archc.errors import ArchError
from archc.files import write_atomic
from archc.tools.run_state import STATE_FILE, finished_message, read_state, state_text

# Mean and standard deviation per channel, as each dataset's usual recipes normalise it.
STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "fake": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
# torchvision's reference training weighs auxiliary classifiers so: GoogLeNet's two 0.3 each, Inception v3's one 0.4.
AUX_WEIGHT_ONE, AUX_WEIGHT_SEVERAL = 0.4, 0.3
METRIC_KEYS = ("epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "images_per_s")


@dataclass
class TrainConfig:
    """What `archc train` was asked to do (docs/api.md describes each field as its flag)."""

    spec: Path
    data: str = "digits"
    data_dir: Path = Path("data")
    download: bool = False
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    aux_weight: float | None = None
    device: str | None = None
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    checkpoint: Path | None = None
    resume: bool = False
    metrics: Path | None = None
    curves: Path | None = None
    seed: int = 0
    workers: int = 0
    defines: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    fake_size: int = 512
    max_steps: int | None = None
    input_shape: tuple[int, int, int] | None = None

    def curves_path(self) -> Path | None:
        """The learning-curve PNG: `--curves`, else beside the metrics file, else in the checkpoint directory."""
        if self.curves is not None:
            return self.curves
        if self.metrics is not None:
            return self.metrics.with_suffix(".png")
        if self.checkpoint is not None:
            return self.checkpoint / "curves.png"
        return None


@dataclass
class Data:
    """Training and validation splits of images (uint8 or floats in [0, 1], any size) and class indices."""

    name: str
    train: Dataset[Any]
    val: Dataset[Any]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


# Data


def _missing(what: str, where: Path, hint: str) -> ArchError:
    return ArchError("E100", f"{what} not found in {where}", None, hint)


def load_digits(seed: int, val_fraction: float = 0.2) -> Data:
    """scikit-learn's 1,797 bundled 8×8 digits, split with `seed` (the same split on every rank and every run)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_val = round(len(labels) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    mean, std = images[train].mean().item(), images[train].std().item()
    return Data("digits", TensorDataset(images[train], labels[train]), TensorDataset(images[val], labels[val]), 10, (mean,), (std,))


def _torchvision_data(name: str, root: Path, download: bool) -> Data:
    import torchvision

    layout = "FashionMNIST/raw/*-idx?-ubyte" if name == "fashion-mnist" else "cifar-10-batches-py/"
    try:
        if name == "fashion-mnist":
            splits = [torchvision.datasets.FashionMNIST(str(root), train=t, download=download) for t in (True, False)]
            tensors = [TensorDataset(s.data.unsqueeze(1), s.targets.long()) for s in splits]
        else:
            cifar = [torchvision.datasets.CIFAR10(str(root), train=t, download=download) for t in (True, False)]
            tensors = [TensorDataset(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets)) for s in cifar]
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted. You can use download=True to download it"
        if download:  # torchvision tried every mirror
            reason = (str(e).splitlines() or [""])[0].rstrip(":")
            raise ArchError(
                "E100", f"the {name} dataset could not be downloaded into {root}: {reason}", None, f"put {layout} in --data-dir by hand"
            ) from e
        raise _missing(
            f"the {name} dataset ({layout})", root, f"point --data-dir at the directory holding {layout}, or pass --download"
        ) from e
    except OSError as e:  # a failed download (URLError is an OSError) or an unreadable file
        raise ArchError(
            "E100", f"the {name} dataset could not be read or downloaded into {root}: {e}", None, f"put {layout} in --data-dir by hand"
        ) from e
    mean, std = STATS[name]
    return Data(name, tensors[0], tensors[1], 10, mean, std)


def _image_folder(path: Path, size: tuple[int, int], seed: int, val_fraction: float = 0.2) -> Data:
    """torchvision's ImageFolder: `PATH/train` and `PATH/val` if both exist, else PATH's class folders split by `seed`."""
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    transform = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    hint = "give a directory with one folder of images per class (or train/ and val/ directories of them)"
    if not path.is_dir():
        raise _missing("an image folder", path, hint)
    try:
        if (path / "train").is_dir() and (path / "val").is_dir():
            train, val = ImageFolder(str(path / "train"), transform), ImageFolder(str(path / "val"), transform)
            if train.classes != val.classes:
                raise ArchError("E100", f"{path}/train and {path}/val have different classes", None, hint)
            classes = len(train.classes)
            train_split: Dataset[Any] = train
            val_split: Dataset[Any] = val
        else:
            folder = ImageFolder(str(path), transform)
            order = torch.randperm(len(folder), generator=torch.Generator().manual_seed(seed)).tolist()
            n_val = max(1, round(len(folder) * val_fraction))
            train_split, val_split = Subset(folder, order[n_val:]), Subset(folder, order[:n_val])
            classes = len(folder.classes)
    except FileNotFoundError as e:  # ImageFolder: "Couldn't find any class folder" / "Found no valid file"
        raise _missing("images in class folders", path, hint) from e
    mean, std = STATS["imagefolder"]
    return Data(f"imagefolder:{path}", train_split, val_split, classes, mean, std)


def _size(dataset: Dataset[Any]) -> int:
    """The number of images of a split (every dataset here is sized; torch's `Dataset` type does not say so)."""
    return len(dataset)  # type: ignore[arg-type]


def load_data(config: TrainConfig, input_shape: tuple[int, int, int]) -> Data:
    """The dataset `config.data` names; the images keep their own size and channels (`adapt` fits them to the spec)."""
    if config.data == "digits":
        return load_digits(config.seed)
    if config.data in ("fashion-mnist", "cifar10"):
        return _torchvision_data(config.data, config.data_dir, config.download)
    if config.data.startswith("imagefolder:"):
        return _image_folder(Path(config.data.partition(":")[2]), (input_shape[1], input_shape[2]), config.seed)
    if config.data == "fake":
        from torchvision import transforms
        from torchvision.datasets import FakeData

        shape = (3, *input_shape[1:])
        train = FakeData(config.fake_size, shape, 10, transforms.ToTensor(), random_offset=config.seed)
        val = FakeData(max(1, config.fake_size // 4), shape, 10, transforms.ToTensor(), random_offset=config.seed + 1_000_003)
        mean, std = STATS["fake"]
        return Data("fake", train, val, 10, mean, std)
    raise ValueError(f"unknown data {config.data!r}: use digits, fashion-mnist, cifar10, imagefolder:PATH or fake")


def adapt(images: Tensor, data: Data, input_shape: tuple[int, int, int]) -> Tensor:
    """A batch fitted to the spec's input: floats normalised with the data's statistics, grey <-> RGB, resized."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    mean = torch.tensor(data.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=x.device).view(1, -1, 1, 1)
    x = (x - mean) / std
    channels, height, width = input_shape
    if x.shape[1] != channels:
        if x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)
        elif channels == 1 and x.shape[1] == 3:  # ITU-R 601 luma, as PIL's convert("L")
            x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        else:
            raise ArchError("E102", f"cannot adapt {x.shape[1]}-channel images to the spec's {channels} channels", None)
    if x.shape[2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=x.shape[2] > height)
    return x


# The loss


def criterion_for(label_smoothing: float, aux_weight: float | None) -> Any:
    """Cross-entropy of the main output, plus the auxiliary outputs' (a training-mode tuple) weighted as torchvision's
    reference recipes do: 0.4 for one auxiliary classifier (Inception v3), 0.3 each for several (GoogLeNet)."""
    ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def loss(outputs: Tensor | tuple[Tensor, ...], target: Tensor) -> Tensor:
        if isinstance(outputs, Tensor):
            return ce(outputs, target)  # type: ignore[no-any-return]
        main, *aux = outputs
        weight = aux_weight if aux_weight is not None else AUX_WEIGHT_ONE if len(aux) == 1 else AUX_WEIGHT_SEVERAL
        total: Tensor = ce(main, target)
        for a in aux:
            if a is not None:
                total = total + weight * ce(a, target)
        return total

    return loss


def main_output(outputs: Tensor | tuple[Tensor, ...]) -> Tensor:
    return outputs if isinstance(outputs, Tensor) else outputs[0]


# Processes


@dataclass
class World:
    """This process's place: rank, number of processes, device; `distributed` under torchrun."""

    rank: int
    size: int
    device: torch.device
    distributed: bool

    @property
    def main(self) -> bool:
        return self.rank == 0


def _device(name: str | None, local_rank: int) -> torch.device:
    if name is None:
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ArchError("E103", f"unknown device {name!r}", None, "use cpu, cuda, cuda:N or mps") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ArchError("E103", f"device {name!r} is not available: torch sees no CUDA device", None, "use --device cpu")
        index = local_rank if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ArchError("E103", f"device cuda:{index} is not available ({torch.cuda.device_count()} CUDA devices)", None)
        device = torch.device("cuda", index)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ArchError("E103", "device 'mps' is not available", None, "use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ArchError("E103", f"device {name!r} is not supported", None, "use cpu, cuda, cuda:N or mps")
    return device


def join_world(device: str | None) -> World:
    """Join torchrun's process group when its environment says so (gloo on CPU, nccl on CUDA)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _device(device, local_rank)
    if size > 1:
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        return World(dist.get_rank(), dist.get_world_size(), dev, True)
    return World(0, 1, dev, False)


# Checkpoints


def _rng_state() -> dict[str, Any]:
    """This process's RNG states, as tensors and plain tuples (what `torch.load(weights_only=True)` accepts)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


def checkpoint_file(directory: Path) -> Path:
    return directory / "last.pt"


def load_checkpoint(directory: Path | None) -> dict[str, Any]:
    """The checkpoint `--resume` continues from, on the CPU (each rank moves what it needs)."""
    if directory is None:
        raise ArchError("E101", "--resume needs --checkpoint DIR, the directory of the run to continue", None)
    path = checkpoint_file(directory)
    if not path.is_file():
        raise ArchError("E101", f"no checkpoint to resume from: {path} does not exist", None, "start without --resume first")
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise ArchError("E101", f"{path} is not an archc checkpoint ({type(e).__name__})", None) from e
    if not isinstance(state, dict) or "archc" not in state:
        raise ArchError("E101", f"{path} is not an archc checkpoint", None)
    return state


# Training


class Totals:
    """Sums over an epoch on this rank, kept on the device (no synchronisation per step): loss × images, correct
    predictions, images."""

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(3, dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)

    def add(self, loss: Tensor, logits: Tensor, target: Tensor) -> None:
        n = target.shape[0]
        self.sums[0] += loss.detach().to(self.sums.dtype) * n
        self.sums[1] += (logits.argmax(1) == target).sum()
        self.sums[2] += n

    def means(self) -> tuple[float, float, int]:
        """(mean loss, accuracy, images) on this rank so far."""
        loss, correct, count = self.sums.tolist()
        return loss / max(count, 1), correct / max(count, 1), int(count)

    def reduce(self, world: World) -> tuple[float, float, int]:
        """(mean loss, accuracy, images) over every rank (an all-reduce on the device, as NCCL needs)."""
        if world.distributed:
            dist.all_reduce(self.sums)
        return self.means()


def _batches(loader: DataLoader[tuple[Tensor, Tensor]], world: World) -> Iterator[tuple[Tensor, Tensor]]:
    for images, target in loader:
        yield images.to(world.device, non_blocking=True), target.to(world.device, non_blocking=True)


class _Bar:
    """rich's progress bar for an epoch, on rank 0 only (a no-op elsewhere and with progress off)."""

    def __init__(self, enabled: bool, description: str, total: int) -> None:
        self.progress: Any = None
        self.enabled = enabled
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task(description, total=total, stats="")

    def update(self, stats: str, completed: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=completed, stats=stats)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def build_model(config: TrainConfig, num_classes: int) -> tuple[nn.Module, tuple[int, int, int]]:
    """The spec's model with `num_classes` outputs (when the arch has that parameter), and its input shape."""
    params = dict(config.defines)
    compiled = compile_spec(config.spec, params, input_shape=config.input_shape)
    names = {p.name for p in compiled.program.arch().params}
    if "num_classes" in names and compiled.arch.params.get("num_classes") != num_classes:
        params["num_classes"] = num_classes
        compiled = compile_spec(config.spec, params, input_shape=config.input_shape)
    elif "num_classes" in names:
        params["num_classes"] = num_classes
    output = compiled.arch.nodes[compiled.arch.outputs[0]].shape
    if list(output) != [num_classes]:
        raise ArchError(
            "E102",
            f"{config.spec} outputs {'×'.join(map(str, output))} values per image; the data has {num_classes} classes",
            None,
            "give the arch a `num_classes` parameter used by its classifier",
        )
    shape = compiled.arch.input_shape
    model: nn.Module = getattr(load_module(compiled), compiled.module_name)(**params)
    return model, (shape[0], shape[1], shape[2])


def _lr_factor(epochs: int) -> Any:
    """Cosine decay per epoch, a function of the epoch and the total alone (so a resumed run takes the same rates)."""
    return lambda epoch: 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def input_shape_of(config: TrainConfig) -> tuple[int, int, int]:
    """The spec's input (channels, height, width), checking the spec before any data is read."""
    shape = compile_spec(config.spec, dict(config.defines), input_shape=config.input_shape).arch.input_shape
    return shape[0], shape[1], shape[2]


def train(config: TrainConfig) -> list[dict[str, float]]:
    """Train as `config` says; returns the metrics of every epoch (rank 0's view of the whole run)."""
    input_shape = input_shape_of(config)
    if config.resume and config.checkpoint is not None and (run := read_state(config.checkpoint)) is not None:
        finished_message(config.checkpoint, run, config.epochs, config.max_steps)  # E101 for a run cut inside an epoch
    world = join_world(config.device)
    try:
        return _train(config, world, input_shape)
    finally:
        if world.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _train(config: TrainConfig, world: World, input_shape: tuple[int, int, int]) -> list[dict[str, float]]:
    state = load_checkpoint(config.checkpoint) if config.resume else None
    if world.distributed and config.download:  # rank 0 downloads, then the others read, or all stop with its error
        failure: ArchError | None = None
        if world.main:
            try:
                load_data(config, input_shape)
            except ArchError as e:
                failure = e
        verdict = [failure is None]
        dist.broadcast_object_list(verdict, src=0)
        if failure is not None:
            raise failure
        if not verdict[0]:
            raise ArchError("E100", f"rank 0 could not download {config.data} into {config.data_dir}", None)
    data = load_data(config, input_shape)
    torch.manual_seed(config.seed + world.rank)
    random.seed(config.seed + world.rank)
    np.random.seed(config.seed + world.rank)

    model, input_shape = build_model(config, data.num_classes)
    model.to(world.device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    if config.channels_last:
        model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config.epochs))
    use_scaler = config.amp and world.device.type == "cuda"
    scaler = torch.amp.GradScaler(world.device.type, enabled=use_scaler)
    amp_dtype = torch.float16 if world.device.type == "cuda" else torch.bfloat16
    history: list[dict[str, float]] = []
    start = steps = 0
    if state is not None:
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise ArchError(
                "E101", f"the checkpoint in {config.checkpoint} does not fit {config.spec}: {str(e).splitlines()[0]}", None
            ) from e
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scheduler.lr_lambdas = [_lr_factor(config.epochs)]
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
            group["lr"] = base * scheduler.lr_lambdas[0](state["epoch"])
        scaler.load_state_dict(state["scaler"])
        start, history = state["epoch"], list(state["history"])
        ranks = state["rng"]
        if world.rank < len(ranks):
            _set_rng_state(ranks[world.rank])

    raw = model
    net: nn.Module = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[world.device.index] if world.device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net)  # type: ignore[assignment]

    sampler: DistributedSampler[Any] = DistributedSampler(
        data.train, num_replicas=world.size, rank=world.rank, shuffle=True, seed=config.seed
    )
    val_indices = list(range(world.rank, _size(data.val), world.size))  # shards without padding: exact sums
    # A last batch of one image would fail batch norm on 1×1 features in training mode: drop it alone.
    drop_last = len(sampler) % config.batch_size == 1
    loader = DataLoader(data.train, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers, drop_last=drop_last)
    val_loader = DataLoader(Subset(data.val, val_indices), batch_size=config.batch_size, num_workers=config.workers)
    loss_fn = criterion_for(config.label_smoothing, config.aux_weight)
    eval_loss = nn.CrossEntropyLoss()
    if state is not None:  # checkpoints from before archc counted steps hold whole epochs
        steps = int(state.get("step", start * len(loader)))
    if world.main and (start >= config.epochs or (config.max_steps is not None and steps >= config.max_steps)):
        bound = f"--epochs {config.epochs}" + (f", --max-steps {config.max_steps}" if config.max_steps is not None else "")
        print(f"{config.checkpoint}: run already finished at step {steps} (epoch {start}; {bound}); nothing to do")

    for epoch in range(start, config.epochs):
        if config.max_steps is not None and steps >= config.max_steps:
            break
        sampler.set_epoch(epoch)
        net.train()
        totals = Totals(world.device)
        step, refresh = 0, max(1, len(loader) // 50)
        bar = _Bar(world.main and config.progress, f"epoch {epoch + 1}/{config.epochs}", len(loader))
        began = time.perf_counter()
        for images, target in _batches(loader, world):
            x = adapt(images, data, input_shape).contiguous(memory_format=memory_format)
            with torch.autocast(world.device.type, dtype=amp_dtype, enabled=config.amp):
                outputs = net(x)
                loss = loss_fn(outputs, target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            totals.add(loss, main_output(outputs).detach(), target)
            step += 1
            steps += 1
            cut = config.max_steps is not None and steps >= config.max_steps and step < len(loader)
            if bar.enabled and (step % refresh == 0 or step == len(loader) or cut):  # reading the sums synchronises
                mean_loss, accuracy, count = totals.means()
                bar.update(
                    f"loss {mean_loss:.4f}  acc {accuracy:.3f}  {count * world.size / (time.perf_counter() - began):,.0f} img/s", step
                )
            if cut:  # every rank counts the same steps: they stop together
                break
        if world.device.type == "cuda":
            torch.cuda.synchronize(world.device)
        elapsed = time.perf_counter() - began
        bar.close()
        scheduler.step()
        train_loss, train_acc, images_seen = totals.reduce(world)

        net.eval()
        val = Totals(world.device)
        with torch.no_grad():
            for images, target in _batches(val_loader, world):
                x = adapt(images, data, input_shape).contiguous(memory_format=memory_format)
                with torch.autocast(world.device.type, dtype=amp_dtype, enabled=config.amp):
                    logits = main_output(net(x))
                val.add(eval_loss(logits.float(), target), logits, target)
        val_loss, val_acc, _ = val.reduce(world)
        row = {
            "epoch": epoch + 1,
            "step": steps,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "images_per_s": images_seen / elapsed,
        }
        history.append(row)
        rngs: list[Any] = [None] * world.size if world.distributed else [_rng_state()]
        if world.distributed:
            dist.all_gather_object(rngs, _rng_state())
        if world.main:
            cut_at = f" (--max-steps {config.max_steps}: stopped at step {step} of {len(loader)})" if step < len(loader) else ""
            print(
                f"epoch {epoch + 1}/{config.epochs}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
                f"val loss {val_loss:.4f} acc {val_acc:.4f}  {_rate(row['images_per_s'])} images/s{cut_at}",
                flush=True,
            )
            _write_outputs(config, raw, optimizer, scheduler, scaler, epoch + 1, history, rngs, data, steps, step < len(loader))
    if world.main and len(history) > start:
        print_written(config)
    return history


def print_written(config: TrainConfig) -> None:
    """Where the run's files are (rank 0, after training)."""
    curves = config.curves_path()
    written = [
        ("checkpoint", checkpoint_file(config.checkpoint) if config.checkpoint is not None else None),
        ("metrics", config.metrics),
        ("curves", curves),
    ]
    for what, path in written:
        if path is not None:
            print(f"{what}: {path}")
    if all(path is None for _, path in written):
        print("nothing written: --checkpoint DIR keeps the weights, --metrics FILE the metrics and their curves")


def _rate(images_per_s: float) -> str:
    return f"{images_per_s:,.0f}" if images_per_s >= 100 else f"{images_per_s:.3g}"


def _write_outputs(
    config: TrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    scaler: torch.amp.GradScaler,
    epoch: int,
    history: list[dict[str, float]],
    rngs: list[Any],
    data: Data,
    steps: int,
    partial: bool,
) -> None:
    """Rank 0's files after an epoch, each written whole: metrics, learning curves, checkpoint."""
    if config.metrics is not None:
        write_atomic(config.metrics, "".join(json.dumps({k: row[k] for k in METRIC_KEYS}) + "\n" for row in history))
    curves = config.curves_path()
    if curves is not None:
        write_atomic(curves, learning_curves_png(history, f"{config.spec.stem} on {data.name}"))
    if config.checkpoint is not None:
        buffer = io.BytesIO()
        torch.save(
            {
                "archc": __version__,
                "spec": config.spec.as_posix(),
                "data": data.name,
                "num_classes": data.num_classes,
                "model": model.state_dict(),  # the unwrapped module's: loads without DDP, on any number of processes
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "step": steps,
                "history": history,
                "rng": rngs,
            },
            buffer,
        )
        write_atomic(checkpoint_file(config.checkpoint), buffer.getvalue())
        # After last.pt, so that it never claims more than the checkpoint holds.
        write_atomic(config.checkpoint / STATE_FILE, state_text(epoch, config.epochs, steps, config.max_steps, partial))


def learning_curves_png(history: list[dict[str, float]], title: str) -> bytes:
    """Loss and accuracy against the epoch, training and validation, as PNG bytes (matplotlib's Agg backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(9, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    epochs = [row["epoch"] for row in history]
    for i, (metric, label) in enumerate((("loss", "loss"), ("acc", "accuracy"))):
        axes = figure.add_subplot(1, 2, i + 1)
        axes.plot(epochs, [row[f"train_{metric}"] for row in history], marker="o", label="train")
        axes.plot(epochs, [row[f"val_{metric}"] for row in history], marker="o", label="validation")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
