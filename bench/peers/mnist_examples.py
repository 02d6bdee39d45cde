"""The peer for bench/time_to_accuracy.py: pytorch/examples' mnist/main.py idiom, written here.

Its 2-conv network (conv 32, conv 64, max-pool, dropout, fc 128, dropout, fc 10), Adadelta
(lr 1.0) with StepLR (gamma 0.7), batch 64 and a test batch of 1000, torchvision's MNIST with
ToTensor + Normalize((0.1307,), (0.3081,)) through a DataLoader, a test pass after every epoch.
Data: the t10k files in ROOT/MNIST/raw; images 0..7,999 train, 8,000..9,999 are held out.

Prints one JSON line per epoch: {"epoch", "elapsed_s" (since this process started, imports
included), "accuracy"}.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.optim as optim  # noqa: E402
from torch.optim.lr_scheduler import StepLR  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


class T10kMNIST(datasets.MNIST):
    """torchvision's MNIST on the t10k files alone (its own check wants all four)."""

    @property
    def raw_folder(self) -> str:
        return str(Path(self.root) / "MNIST" / "raw")

    def _check_exists(self) -> bool:
        raw = Path(self.raw_folder)
        return all((raw / f"t10k-{k}-idx{d}-ubyte").exists() for k, d in
                   (("images", 3), ("labels", 1)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args()
    torch.manual_seed(1)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    full = T10kMNIST(a.root, train=False, download=False, transform=tf)
    train_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(full, range(8000)),
                                               batch_size=64, shuffle=True)
    test_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(full, range(8000, 10000)),
                                              batch_size=1000)
    model = Net()
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    for epoch in range(1, a.epochs + 1):
        model.train()
        for data, target in train_loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for data, target in test_loader:
                correct += model(data).argmax(dim=1).eq(target).sum().item()
        scheduler.step()
        print(json.dumps({"epoch": epoch, "elapsed_s": time.perf_counter() - START,
                          "accuracy": correct / 2000}), flush=True)


if __name__ == "__main__":
    main()
