"""`archc train`: real data reaches real accuracy, resuming is exact, two gloo processes train with DDP, every
data source loads (torchvision's on-disk formats written here in miniature), and bad input is one clear line."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from archc.cli import main
from archc.tools.train import METRIC_KEYS, TrainConfig, adapt, criterion_for, load_data, load_digits
from tests.conftest import ROOT, SPECS

LENET = str(SPECS / "lenet5.arch")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", *argv, "--no-progress"])
    return code, out.getvalue(), err.getvalue()


def metrics(path: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def generated_lenet5(checkpoint: Path) -> nn.Module:
    """The checkpoint's weights in the committed generated module, loaded strictly."""
    from generated.lenet5 import lenet5

    model = lenet5(num_classes=10)
    model.load_state_dict(torch.load(checkpoint / "last.pt", map_location="cpu", weights_only=True)["model"], strict=True)
    return model.eval()


def accuracy_on_digits_val(model: nn.Module) -> float:
    data = load_digits(seed=0)
    images, labels = data.val.tensors  # type: ignore[attr-defined]
    with torch.no_grad():
        predicted = model(adapt(images, data, (1, 32, 32))).argmax(1)
    return int((predicted == labels).sum()) / len(labels)


def test_lenet5_on_digits_reaches_90_percent_in_three_epochs(tmp_path: Path) -> None:
    m = tmp_path / "m.jsonl"
    code, out, err = run(LENET, "--data", "digits", "--epochs", "3", "--metrics", str(m), "--checkpoint", str(tmp_path / "ck"))
    assert code == 0, err
    rows = metrics(m)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(tuple(r) == METRIC_KEYS for r in rows)
    assert rows[-1]["val_acc"] >= 0.9
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    # The reported accuracy is the saved weights' accuracy, measured again with the generated module.
    assert accuracy_on_digits_val(generated_lenet5(tmp_path / "ck")) == pytest.approx(rows[-1]["val_acc"], abs=1e-9)
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.count("val loss") == 3


# Dropout draws from the RNG in every training step, so resuming is exact only if the RNG states are restored too.
DROPOUT_NET = """\
arch net(num_classes = 10) {
    input (1, 8, 8)
    flatten(1)
    linear(32)
    relu()
    dropout(0.5)
    linear(num_classes)
}
"""


def test_resume_continues_exactly(tmp_path: Path) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    spec = tmp_path / "net.arch"
    spec.write_text(DROPOUT_NET, encoding="utf-8")
    common = [str(spec), "--data", "digits", "--label-smoothing", "0.1"]
    assert run(*common, "--epochs", "2", "--checkpoint", str(straight), "--metrics", str(straight / "m.jsonl"))[0] == 0
    assert run(*common, "--epochs", "1", "--checkpoint", str(split), "--metrics", str(split / "m.jsonl"))[0] == 0
    assert run(*common, "--epochs", "2", "--checkpoint", str(split), "--metrics", str(split / "m.jsonl"), "--resume")[0] == 0
    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(split / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for row_a, row_b in zip(metrics(straight / "m.jsonl"), metrics(split / "m.jsonl"), strict=True):
        assert {k: v for k, v in row_a.items() if k != "images_per_s"} == {k: v for k, v in row_b.items() if k != "images_per_s"}


def test_two_gloo_processes_train_with_ddp_and_the_checkpoint_loads_anywhere(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "archc", "train", LENET]
    command += ["--data", "digits", "--epochs", "1", "--checkpoint", str(ck), "--metrics", str(tmp_path / "m.jsonl"), "--device", "cpu"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("epoch 1/1  train loss") == 1  # rank 0 alone reports
    assert len(metrics(tmp_path / "m.jsonl")) == 1
    state = torch.load(ck / "last.pt", weights_only=True)
    assert len(state["rng"]) == 2
    accuracy = accuracy_on_digits_val(generated_lenet5(ck))
    assert accuracy == pytest.approx(metrics(tmp_path / "m.jsonl")[0]["val_acc"], abs=1e-9)  # sharded validation, summed
    # ... and one process continues the two processes' run.
    code, _, err = run(LENET, "--data", "digits", "--epochs", "2", "--checkpoint", str(ck), "--resume")
    assert code == 0, err
    assert torch.load(ck / "last.pt", weights_only=True)["epoch"] == 2


def test_amp_and_channels_last_on_the_cpu(tmp_path: Path) -> None:
    m = tmp_path / "m.jsonl"
    code, _, err = run(LENET, "--epochs", "1", "--amp", "--channels-last", "--batch-size", "128", "--metrics", str(m))
    assert code == 0, err
    (row,) = metrics(m)
    assert 0 <= row["val_acc"] <= 1 and row["train_loss"] > 0


def test_auxiliary_outputs_are_weighted_as_torchvisions_references() -> None:
    import archc

    ce = nn.CrossEntropyLoss(label_smoothing=0.1)
    target = torch.tensor([1, 3])
    googlenet = archc.build(SPECS / "googlenet.arch", num_classes=5).train()
    out, aux2, aux1 = googlenet(torch.randn(2, 3, 96, 96))
    loss = criterion_for(0.1, None)((out, aux2, aux1), target)
    assert torch.allclose(loss, ce(out, target) + 0.3 * ce(aux1, target) + 0.3 * ce(aux2, target))
    logits, aux = torch.randn(2, 5), torch.randn(2, 5)
    assert torch.allclose(criterion_for(0.1, None)((logits, aux), target), ce(logits, target) + 0.4 * ce(aux, target))
    assert torch.allclose(
        criterion_for(0.0, 0.5)((logits, aux), target),
        nn.functional.cross_entropy(logits, target) + 0.5 * nn.functional.cross_entropy(aux, target),
    )


# Data sources


def _idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as MNIST and Fashion-MNIST ship them: magic (0, 0, type 0x08, rank), big-endian sizes, bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_idx_files(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (40, 28, 28)), np.arange(40) % 10
    for prefix, n in (("train", 32), ("t10k", 8)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", images[:n])
        _idx(raw / f"{prefix}-labels-idx1-ubyte", labels[:n])
    data = load_data(TrainConfig(Path(LENET), data="fashion-mnist", data_dir=tmp_path), (1, 32, 32))
    assert (len(data.train), len(data.val), data.num_classes) == (32, 8, 10)  # type: ignore[arg-type]
    x, y = data.train[5]
    assert torch.equal(x[0], torch.from_numpy(images[5].astype(np.uint8))) and int(y) == 5
    code, _, err = run(
        LENET, "--data", "fashion-mnist", "--data-dir", str(tmp_path), "--epochs", "1", "--metrics", str(tmp_path / "m.jsonl")
    )
    assert code == 0, err
    assert len(metrics(tmp_path / "m.jsonl")) == 1


def test_cifar10_from_pickled_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batches[name] = {"data": rng.integers(0, 256, (4, 3072)).astype(np.uint8), "labels": [1, 2, 3, 4]}
        (folder / name).write_bytes(pickle.dumps(batches[name]))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    # torchvision checks the real files' MD5 sums; these are stand-ins in the same format, so only their presence is.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    data = load_data(TrainConfig(Path(LENET), data="cifar10", data_dir=tmp_path), (1, 32, 32))
    assert (len(data.train), len(data.val)) == (20, 4)  # type: ignore[arg-type]
    x, y = data.train[0]
    assert torch.equal(x, torch.from_numpy(batches["data_batch_1"]["data"][0].reshape(3, 32, 32))) and int(y) == 1
    grey = adapt(x[None], data, (1, 32, 32))
    assert grey.shape == (1, 1, 32, 32)
    code, _, err = run(LENET, "--data", "cifar10", "--data-dir", str(tmp_path), "--epochs", "1")
    assert code == 0, err


def test_imagefolder_of_pngs(tmp_path: Path) -> None:
    from PIL import Image

    for c, colour in enumerate(("red", "blue", "green")):
        (tmp_path / "imgs" / f"class{c}").mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (12 + i, 10), colour).save(tmp_path / "imgs" / f"class{c}" / f"{i}.png")
    data = load_data(TrainConfig(Path(LENET), data=f"imagefolder:{tmp_path / 'imgs'}"), (1, 32, 32))
    assert (len(data.train), len(data.val), data.num_classes) == (12, 3, 3)  # type: ignore[arg-type]
    assert data.train[0][0].shape == (3, 32, 32)
    code, _, err = run(LENET, "--data", f"imagefolder:{tmp_path / 'imgs'}", "--epochs", "1", "--metrics", str(tmp_path / "m.jsonl"))
    assert code == 0, err
    assert len(metrics(tmp_path / "m.jsonl")) == 1


def test_fake_data(tmp_path: Path) -> None:
    data = load_data(TrainConfig(Path(LENET), data="fake", fake_size=8), (1, 32, 32))
    assert (len(data.train), len(data.val)) == (8, 2)  # type: ignore[arg-type]
    assert adapt(torch.stack([data.train[i][0] for i in range(4)]), data, (1, 32, 32)).shape == (4, 1, 32, 32)


# Bad input


def test_missing_data_dir_names_the_flag(tmp_path: Path) -> None:
    for name in ("cifar10", "fashion-mnist"):
        code, _, err = run(LENET, "--data", name, "--data-dir", str(tmp_path / "none"))
        assert code == 1
        assert err.startswith("error[E100]: ") and "--data-dir" in err and "Traceback" not in err, err
    code, _, err = run(LENET, "--data", f"imagefolder:{tmp_path / 'none'}")
    assert code == 1 and "error[E100]" in err


def test_a_failed_download_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    def offline(self: object) -> None:  # what torchvision raises once every mirror has failed
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://example.invalid, got:\nno network")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", offline)
    code, _, err = run(LENET, "--data", "fashion-mnist", "--data-dir", str(tmp_path), "--download")
    assert code == 1
    assert err.startswith("error[E100]: the fashion-mnist dataset could not be downloaded into") and "by hand" in err, err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--data", "mnist"], "unknown data 'mnist'"),
        (["--data", "imagefolder:"], "unknown data 'imagefolder:'"),
        (["--workers", "-1"], "expected a non-negative integer"),
        (["--lr", "0"], "expected a positive number"),
        (["--label-smoothing", "1.5"], "expected a number in [0, 1)"),
    ],
)
def test_bad_flags_are_usage_errors(flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["train", LENET, *flags])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_spec_resume_without_checkpoint_unfit_spec_and_missing_device(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "missing.arch"))
    assert code == 1 and "error[E006]" in err
    code, _, err = run(LENET, "--resume", "--checkpoint", str(tmp_path / "ck"))
    assert code == 1 and "error[E101]" in err and "last.pt" in err
    spec = tmp_path / "net.arch"
    spec.write_text("arch net() {\n    input (1, 8, 8)\n    flatten(1)\n    linear(5)\n}\n", encoding="utf-8")
    code, _, err = run(str(spec))
    assert code == 1 and "error[E102]" in err and "10 classes" in err
    code, _, err = run(LENET, "--device", "cuda:99")
    assert code == 1 and "error[E103]" in err
    assert "Traceback" not in err
