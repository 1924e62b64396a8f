#!/usr/bin/python3
"""PyTorch peer of engine_speed: torchvision resnet18 from scratch, the same
training step (forward + cross-entropy + backward + SGD momentum) and
evaluation-mode inference under no_grad, printing one JSON line.

usage: engine_speed_torch.py [--arch resnet18] [--size 224] [--batch 16] [--steps 5] [--threads 2]
"""
import argparse, json, resource, time
import torch, torchvision

ap = argparse.ArgumentParser()
ap.add_argument("--arch", default="resnet18")
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--steps", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--classes", type=int, default=1000)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
m = getattr(torchvision.models, a.arch)(num_classes=a.classes)
x = torch.randn(a.batch, 3, a.size, a.size)
y = torch.randint(0, a.classes, (a.batch,))
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
lossf = torch.nn.CrossEntropyLoss()
m.train()
tt = ct = 0.0
for s in range(a.steps + 1):
    t0, c0 = time.perf_counter(), time.process_time()
    opt.zero_grad()
    loss = lossf(m(x), y)
    loss.backward()
    opt.step()
    if s > 0:
        tt += time.perf_counter() - t0
        ct += time.process_time() - c0
m.eval()
ti = ci = 0.0
with torch.no_grad():
    for s in range(a.steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        m(x)
        if s > 0:
            ti += time.perf_counter() - t0
            ci += time.process_time() - c0
print(json.dumps({"engine": "torch", "arch": a.arch, "size": a.size, "batch": a.batch,
                  "threads": a.threads, "train_images_per_s": round(a.steps * a.batch / tt, 2),
                  "infer_images_per_s": round(a.steps * a.batch / ti, 2),
                  "loss": round(loss.item(), 4),
                  "train_cpu_s_per_image": round(ct / (a.steps * a.batch), 5),
                  "infer_cpu_s_per_image": round(ci / (a.steps * a.batch), 5),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
