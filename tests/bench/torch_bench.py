#!/usr/bin/python3
"""The PyTorch peer of `sweep-worker bench`: the same steps, the same JSON keys.

    /usr/bin/python3 tests/bench/torch_bench.py --arch resnet18 --input-size 224 \
        --batch 16 [--freeze STAGE] [--threads T] [--steps S] [--classes K]

Uses Debian's PyTorch 1.13 with its default settings (oneDNN convolutions,
default allocator) and torch.set_num_threads(T). The model is torchvision's
resnet18/34/50, vgg11_bn/vgg16_bn or inception_v3 (with its auxiliary head
in training, 0.4 x its loss, as the worker) from scratch (no weights), dropout
off (as the worker's bench), the batch is random normal pixels
with random labels. Timed steps, after one untimed warm-up of each:
  train: optimizer.zero_grad(), training-mode forward, cross-entropy,
         backward, SGD step (lr 0.01, momentum 0.9, weight decay 1e-4);
  infer: evaluation-mode forward under torch.no_grad().
Freezing puts the modules up to STAGE in evaluation mode without gradients,
as the worker does. Prints one JSON object: train_images_per_s,
infer_images_per_s, gflops (training, forward of every conv/linear plus dW and
dX of the trainable ones, the count sweep-worker uses), infer_gflops,
blas_core, threads, sgemm_gflops_peak (best of 3 torch.mm of two 2048x2048
float32 matrices, measured after the model), peak_rss_mb (getrusage
high-water mark, read before the sgemm), and the configuration.
"""
import argparse
import json
import re
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

STAGES = ["none", "stem", "layer1", "layer2", "layer3", "layer4", "all"]


def frozen_modules(model, freeze):
    """The modules the worker freezes for FREEZE (a prefix of the network)."""
    order = [["conv1", "bn1"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]
    n = STAGES.index(freeze)  # none 0, stem 1 (conv1+bn1), ..., layer4 5, all 6
    names = [m for group in order[:min(n, 5)] for m in group]
    return [getattr(model, m) for m in names]


def count_flops(model, size):
    """Forward FLOPs per image of all convolutions/linears, and of the trainable ones."""
    total = [0.0, 0.0]
    hooks = []

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            k = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            f = 2.0 * out[0].numel() * k
        else:
            f = 2.0 * mod.in_features * mod.out_features
        total[0] += f
        if mod.weight.requires_grad:
            total[1] += f

    for mod in model.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            hooks.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total[0], total[1]


def set_train(model, frozen):
    model.train()
    for m in frozen:
        m.eval()


def sgemm_peak(n=2048):
    a = torch.rand(n, n)
    b = torch.rand(n, n)
    best = 0.0
    for r in range(4):
        t0 = time.perf_counter()
        torch.mm(a, b)
        dt = time.perf_counter() - t0
        if r > 0:
            best = max(best, 2.0 * n ** 3 / dt / 1e9)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet34", "resnet50",
                                                           "vgg11_bn", "vgg16_bn", "inception_v3"])
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--freeze", default="none", choices=STAGES)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--classes", type=int, default=1000)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.arch == "inception_v3":  # the worker trains with the auxiliary head (0.4 x its loss)
        model = torchvision.models.inception_v3(weights=None, num_classes=a.classes,
                                                aux_logits=True, init_weights=True)
    else:
        model = getattr(torchvision.models, a.arch)(num_classes=a.classes)
    for mod in model.modules():  # the worker's bench trains without dropout
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0
    if not a.arch.startswith("resnet") and a.freeze != "none":
        ap.error("--freeze is only for the ResNets here")
    frozen = frozen_modules(model, a.freeze)
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    fwd_all, fwd_trainable = count_flops(model, a.input_size)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(a.batch, 3, a.input_size, a.input_size)
    y = torch.randint(0, a.classes, (a.batch,))

    def train_step():
        opt.zero_grad()
        out = model(x)
        if isinstance(out, tuple):  # InceptionOutputs(logits, aux_logits)
            loss = F.cross_entropy(out[0], y) + 0.4 * F.cross_entropy(out[1], y)
        else:
            loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return loss.item()

    set_train(model, frozen)
    t0 = time.perf_counter()
    loss = train_step()
    first_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = train_step()
    train_s = time.perf_counter() - t0

    model.eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        model(x)
        first_infer = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(a.steps):
            model(x)
        infer_s = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    train_ips = a.batch * a.steps / train_s
    infer_ips = a.batch * a.steps / infer_s
    peak = sgemm_peak()
    blas = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    out = {
        "arch": a.arch, "model": a.arch, "input_size": a.input_size, "batch": a.batch,
        "freeze": a.freeze, "classes": a.classes, "width": 64, "steps": a.steps,
        "threads": torch.get_num_threads(),
        "blas_core": "pytorch %s (oneDNN convolutions, BLAS %s)" % (
            torch.__version__, blas.group(1) if blas else "unknown"),
        "train_images_per_s": train_ips,
        "infer_images_per_s": infer_ips,
        "gflops": (fwd_all + 2 * fwd_trainable) * train_ips / 1e9,
        "infer_gflops": fwd_all * infer_ips / 1e9,
        "sgemm_gflops_peak": peak,
        "peak_rss_mb": rss,
        "forward_gflop_per_image": fwd_all / 1e9,
        "train_step_s": train_s / a.steps,
        "infer_step_s": infer_s / a.steps,
        "first_train_step_s": first_train,
        "first_infer_step_s": first_infer,
        "loss": loss,
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in params),
    }
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
