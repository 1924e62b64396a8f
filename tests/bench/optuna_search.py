#!/usr/bin/python3
"""The Optuna + PyTorch side of tests/bench/bench_search.sh: one process of a
random search that several processes run together on one SQLite storage, as
Optuna's documentation recommends for parallel optimisation (each process
calls study.optimize on the same study, loaded by name from the storage).

  optuna_search.py --storage sqlite:///S.db --study NAME --worker I --trials N
                   --train DIR --val DIR --weights W.safetensors
                   [--epochs 3] [--batch 64] [--input 64] [--seed 1]

runs N trials in this process (the bench starts two, each with half the
trials). The sampler is RandomSampler(seed=SEED + I): the processes must not
share a seed, or they would draw the same parameters. The recipe is
tests/bench/torch_trial.py's (same weights, preprocessing, freezing with the
frozen stages' batchnorm in eval mode, SGD with momentum 0.9, a constant
learning rate, shuffled batches, mean cross-entropy, a validation pass per
epoch), with the search's parameters: lr (log-uniform 1e-3..1e-1), dropout
before the head (uniform 0..0.5), weight decay (log-uniform 1e-5..1e-2, L2 as
torch.optim.SGD applies it) and freeze (layer2 or layer3). A trial's value is
its best validation accuracy over the epochs, as sweepd's objective. PyTorch
runs on 1 thread. Each process decodes the images once, before its trials.
"""
import argparse
import os
import sys
import time

import optuna
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_trial  # noqa: E402  (the shared PyTorch recipe)


def run_trial(trial, a, data, state):
    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    wd = trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True)
    freeze = trial.suggest_categorical("freeze", ["layer2", "layer3"])
    xtr, ytr, xva, yva, classes = data
    k_file = state["fc.weight"].shape[0]
    model = torch_trial.build("resnet18", k_file)
    model.load_state_dict(state, strict=False)
    model.fc = torch.nn.Sequential(torch.nn.Dropout(dropout),
                                   torch.nn.Linear(model.fc.in_features, classes))
    frozen = torch_trial.frozen_modules(model, freeze)
    for m in frozen:
        for p in m.parameters():
            p.requires_grad = False
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = len(ytr)
    best = 0.0
    for _ in range(a.epochs):
        model.train()
        for m in frozen:
            m.eval()
        perm = torch.randperm(n)
        for i in range(0, n, a.batch):
            idx = perm[i:i + a.batch]
            if len(idx) < 2:
                continue  # training-mode batchnorm needs two images (sweepd drops it too)
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(yva), a.batch):
                correct += (model(xva[i:i + a.batch]).argmax(1) == yva[i:i + a.batch]).sum().item()
        best = max(best, correct / len(yva))
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--storage", required=True)
    p.add_argument("--study", required=True)
    p.add_argument("--worker", type=int, required=True)
    p.add_argument("--trials", type=int, required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--val", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--input", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed + a.worker)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.time()
    xtr, ytr, names = torch_trial.load_folder(a.train, a.input)
    xva, yva, _ = torch_trial.load_folder(a.val, a.input, names)
    state = torch_trial.load_safetensors(a.weights)
    data = (xtr, ytr, xva, yva, len(names))
    study = optuna.create_study(study_name=a.study, storage=a.storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=a.seed + a.worker),
                                load_if_exists=True)
    study.optimize(lambda t: run_trial(t, a, data, state), n_trials=a.trials)
    print("optuna worker %d: %d trials in %.1f s" % (a.worker, a.trials, time.time() - t0),
          file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
