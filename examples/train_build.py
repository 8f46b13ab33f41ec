"""Build a spec into a module with `archc.build` (compiled in memory, no file written) and train it on the digits.

    python examples/train_build.py                         # LeNet-5, 5 epochs
    python examples/train_build.py specs/resnet18.arch     # any spec: its input size and channels adapt the data
    EPOCHS=1 python examples/train_build.py

`archc train SPEC --data digits` does the same with a progress bar, checkpoints, metrics and DDP (docs/api.md).
"""

import os
import sys

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import archc


def main(spec: str) -> None:
    torch.manual_seed(0)
    epochs = int(os.environ.get("EPOCHS", "5"))
    report = archc.analyze(spec, num_classes=10)  # the spec's figures, without building anything
    channels, height, width = report.input
    print(f"{report.name}: {report.params:,} parameters, {report.macs:,} MACs per {channels}×{height}×{width} image")
    model = archc.build(spec, num_classes=10)

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False).expand(-1, channels, -1, -1)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(bunch.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    val, train = order[: len(y) // 5], order[len(y) // 5 :]

    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for epoch in range(epochs):
        model.train()
        for batch in train[torch.randperm(len(train))].split(64):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x[val]).argmax(1) == y[val]).float().mean().item()
        print(f"epoch {epoch + 1}: train loss {loss.item():.4f}, validation accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "specs/lenet5.arch")
