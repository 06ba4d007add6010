#!/usr/bin/env python3
"""A small training script for popsweep's external-program mode (standard library only).

Logistic regression with quadratic features on a noisy two-moons problem, trained by
minibatch SGD. It takes its hyperparameters as W&B's agent passes them (--lr=0.01 ...) and
prints one JSON line per epoch, which popsweep reads for the sweep metric:

    {"epoch": 3, "train_loss": 0.52, "val_loss": 0.49, "val_accuracy": 0.81}

--workers starts that many helper processes, as a PyTorch DataLoader does; a pruned trial
must take them down with it (popsweep kills the trial's whole process group).
EXAMPLE_EPOCH_SECONDS (default 0) makes each epoch take at least that long, for demos and
for tests that interrupt a sweep.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import time


def moons(n, rng):
    rows = []
    for i in range(n):
        label = i % 2
        t = rng.uniform(0.0, math.pi)
        x, y = (math.cos(t), math.sin(t)) if label == 0 else (1.0 - math.cos(t), 0.5 - math.sin(t))
        rows.append(((x + rng.gauss(0, 0.2), y + rng.gauss(0, 0.2)), label))
    return rows


def features(p):
    x, y = p
    return [1.0, x, y, x * x, x * y, y * y, x * x * x, y * y * y]


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


def loss_and_accuracy(w, rows):
    loss, correct = 0.0, 0
    for p, label in rows:
        q = min(max(sigmoid(sum(a * b for a, b in zip(w, features(p)))), 1e-12), 1 - 1e-12)
        loss -= math.log(q) if label == 1 else math.log(1 - q)
        correct += (q > 0.5) == (label == 1)
    return loss / len(rows), correct / len(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight_decay", type=float, default=0.0)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    workers = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        for _ in range(args.workers)
    ]
    pause = float(os.environ.get("EXAMPLE_EPOCH_SECONDS", "0"))
    rng = random.Random(args.seed)
    train, val = moons(400, rng), moons(200, rng)
    w = [0.0] * len(features((0.0, 0.0)))
    for epoch in range(1, args.epochs + 1):
        start = time.time()
        rng.shuffle(train)
        for b in range(0, len(train), args.batch_size):
            batch = train[b : b + args.batch_size]
            grad = [0.0] * len(w)
            for p, label in batch:
                f = features(p)
                err = sigmoid(sum(a * c for a, c in zip(w, f))) - label
                for k, fk in enumerate(f):
                    grad[k] += err * fk / len(batch)
            w = [wk - args.lr * (gk + args.weight_decay * wk) for wk, gk in zip(w, grad)]
        train_loss, _ = loss_and_accuracy(w, train)
        val_loss, val_accuracy = loss_and_accuracy(w, val)
        print(json.dumps({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                          "val_accuracy": val_accuracy}), flush=True)
        time.sleep(max(0.0, pause - (time.time() - start)))
    for p in workers:
        p.terminate()


if __name__ == "__main__":
    main()
