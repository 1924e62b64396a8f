#!/usr/bin/python3
"""The PyTorch side of tests/bench/bench_trial.sh and tests/bench/transfer.sh.

  torch_trial.py export --out W.safetensors [--seed S] [--arch resnet18] [--classes K]
      saves a torchvision ResNet at its default (random) initialisation as a
      safetensors file under torchvision names (what sweep-worker loads).
  torch_trial.py train --train DIR --val DIR --weights W.safetensors
                       [--freeze none|stem|layer1..layer4|all] [--epochs 5] [--batch 64]
                       [--lr 0.01] [--momentum 0.9] [--input 64] [--threads 2] [--seed 0]
      decodes both ImageFolders once into tensors (resize shorter side to
      round(input/0.875), centre crop, ImageNet normalisation, as the worker's
      evaluation view), then runs the standard fine-tuning loop: weights
      loaded, fc replaced when the class count differs, parameters of the
      frozen stages with requires_grad=False and their batchnorm layers kept in
      eval mode, SGD with momentum, shuffled batches, mean cross-entropy, one
      validation pass per epoch. Prints one JSON object: seconds (model set-up,
      training and validation; decoding excluded), decode_seconds, val_accuracy
      per epoch.
"""
import argparse
import json
import os
import struct
import sys
import time

import torch
import torchvision
from PIL import Image

STAGES = ["stem", "layer1", "layer2", "layer3", "layer4"]
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__" or e["dtype"] != "F32":
            continue
        b, e2 = e["data_offsets"]
        buf = bytearray(data[8 + n + b:8 + n + e2])
        out[name] = torch.frombuffer(buf, dtype=torch.float32).reshape(e["shape"]).clone()
    return out


def build(arch, classes):
    return getattr(torchvision.models, arch)(num_classes=classes)


def load_folder(root, size, classes=None):
    names = classes or sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    short = int(round(size / 0.875))
    xs, ys = [], []
    for label, name in enumerate(names):
        d = os.path.join(root, name)
        if not os.path.isdir(d):
            continue
        for fn in sorted(os.listdir(d)):
            if not fn.lower().endswith((".jpg", ".jpeg")):
                continue
            im = Image.open(os.path.join(d, fn)).convert("RGB")
            w, h = im.size
            if w <= h:
                nw, nh = short, int(short * h / w)
            else:
                nw, nh = int(short * w / h), short
            im = im.resize((nw, nh), Image.BILINEAR)
            left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
            im = im.crop((left, top, left + size, top + size))
            t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
            t = t.view(size, size, 3).permute(2, 0, 1).float() / 255.0
            xs.append((t - MEAN) / STD)
            ys.append(label)
    return torch.stack(xs), torch.tensor(ys), names


def frozen_modules(model, freeze):
    """The modules of the frozen prefix, in order."""
    if freeze == "none":
        return []
    upto = len(STAGES) if freeze == "all" else STAGES.index(freeze) + 1
    mods = []
    for s in STAGES[:upto]:
        mods += [model.conv1, model.bn1] if s == "stem" else [getattr(model, s)]
    return mods


def cmd_export(a):
    torch.manual_seed(a.seed)
    model = build(a.arch, a.classes)
    save_safetensors(a.out, {k: v for k, v in model.state_dict().items()
                             if not k.endswith("num_batches_tracked")})


def cmd_train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.time()
    xtr, ytr, names = load_folder(a.train, a.input)
    xva, yva, _ = load_folder(a.val, a.input, names)
    decode = time.time() - t0

    t0 = time.time()
    state = load_safetensors(a.weights)
    k_file = state["fc.weight"].shape[0]
    model = build(a.arch, k_file)
    model.load_state_dict(state, strict=False)
    if k_file != len(names):
        model.fc = torch.nn.Linear(model.fc.in_features, len(names))
    frozen = frozen_modules(model, a.freeze)
    for m in frozen:
        for p in m.parameters():
            p.requires_grad = False
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    accs = []
    n = len(ytr)
    for epoch in range(a.epochs):
        model.train()
        for m in frozen:
            m.eval()
        perm = torch.randperm(n)
        for i in range(0, n, a.batch):
            idx = perm[i:i + a.batch]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(yva), a.batch):
                correct += (model(xva[i:i + a.batch]).argmax(1) == yva[i:i + a.batch]).sum().item()
        accs.append(correct / len(yva))
    secs = time.time() - t0
    if a.save:
        save_safetensors(a.save, model.state_dict())
    print(json.dumps({"seconds": secs, "decode_seconds": decode, "train_images": n,
                      "val_images": len(yva), "val_accuracy": accs}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--out", required=True)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--arch", default="resnet18")
    e.add_argument("--classes", type=int, default=1000)
    t = sub.add_parser("train")
    t.add_argument("--train", required=True)
    t.add_argument("--val", required=True)
    t.add_argument("--weights", required=True)
    t.add_argument("--arch", default="resnet18")
    t.add_argument("--freeze", default="none", choices=["none", "all"] + STAGES)
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=0.01)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--input", type=int, default=64)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--save", default=None)
    a = p.parse_args()
    {"export": cmd_export, "train": cmd_train}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
