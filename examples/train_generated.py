"""Train the generated LeNet-5 on scikit-learn's digits with a plain PyTorch loop: no archc, just the module.

    python examples/train_generated.py            # 5 epochs, about 97% validation accuracy
    EPOCHS=1 python examples/train_generated.py

`generated/lenet5.py` depends on torch alone: copy it into a project, or import it from a checkout of archc as here.
"""

import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's root, which holds generated/
from generated.lenet5 import lenet5  # noqa: E402


def digits(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 8×8 digits upsampled to LeNet-5's 1×32×32 input, standardised, split 80/20."""
    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(bunch.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    val, train = order[: len(y) // 5], order[len(y) // 5 :]
    return x[train], y[train], x[val], y[val]


def main() -> None:
    torch.manual_seed(0)
    epochs = int(os.environ.get("EPOCHS", "5"))
    x_train, y_train, x_val, y_val = digits()
    model = lenet5(num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(len(y_train)).split(64):
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
        print(f"epoch {epoch + 1}: train loss {loss.item():.4f}, validation accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
