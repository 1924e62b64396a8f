#!/usr/bin/python3
"""export-weights — turn a torchvision or timm ResNet, a torchvision VGG
(vgg11..vgg19, _bn) or Inception v3 into the safetensors file sweep-worker
loads (README.md "Contract": torchvision tensor names, float32).

    etc/export-weights.py MODEL.pth OUT.safetensors [--input-size N] [--classes FILE]
    etc/export-weights.py --pretrained resnet18 OUT.safetensors          (needs internet)
    etc/export-weights.py --pretrained timm:resnet50 OUT.safetensors

MODEL.pth may hold a state dict (torch.save(model.state_dict(), ...)), a
training checkpoint with the state dict under "state_dict", "model" or
"model_state_dict", or a whole pickled model (only with --allow-pickle, since
unpickling runs code from the file). Prefixes such as "module." (DataParallel)
are stripped. num_batches_tracked counters are dropped; every other tensor must
belong to a torchvision-style ResNet (conv1, bn1, layer1..layer4, fc), VGG
(features.N, classifier.0/3/6) or Inception v3 (Conv2d_1a_3x3 .. Mixed_7c,
AuxLogits, fc), recognised by the same marker tensors as the worker
(common/arch.c), and is written as little-endian float32.

The safetensors file is written by hand with the standard library: 8-byte
little-endian header length, a JSON header ({"name": {"dtype": "F32", "shape":
[...], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}), then the
raw data. __metadata__ carries what predict/eval need: arch (ResNets from the
block counts and block type: resnet18/34/50/101/152, else "resnet-basic-1-1-1-1"
style; VGGs from their convolution pattern: vgg11 .. vgg19_bn, else "vgg-N";
inception_v3), input_size (default 224, 299 for Inception v3), mean and std
(ImageNet's unless given), classes when known, and format "sweepd-weights-1".
input_size, mean and std are the file's preprocessing: a job (sweepd) or trial
(sweep-worker run) without model.input_size trains at this input_size, and
training, validation, eval and predict all normalise with this mean and std.
The file is written to a temporary name in the
target directory and renamed, so an interrupted export leaves nothing half
written.

Only the standard library and torch are needed; torchvision or timm only for
--pretrained (and for --allow-pickle of models defined there).
Exit status: 0 written, 1 the input is not a usable ResNet, 2 usage error.
"""
import argparse
import json
import os
import re
import struct
import sys
import tempfile

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
PREFIXES = ("module.", "model.", "backbone.", "encoder.", "net.")
ARCHS = {("basic", (2, 2, 2, 2)): "resnet18", ("basic", (3, 4, 6, 3)): "resnet34",
         ("bottleneck", (3, 4, 6, 3)): "resnet50", ("bottleneck", (3, 4, 23, 3)): "resnet101",
         ("bottleneck", (3, 8, 36, 3)): "resnet152"}


# model families as the worker knows them (common/arch.c): a marker tensor each
FAMILY_MARKERS = (("vgg", "features.0.weight"), ("inception_v3", "Mixed_5b.branch1x1.conv.weight"),
                  ("resnet", "layer1.0.conv1.weight"))
VGG_CONVS = {8: "vgg11", 10: "vgg13", 13: "vgg16", 16: "vgg19"}


class ExportError(Exception):
    """The input cannot be exported; the message says why."""


def load_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ExportError("PyTorch is not installed; on Debian: sudo apt-get install python3-torch")
    import torch
    return torch


# What a state dict or a training checkpoint pickles: containers, tensors and
# their storages, plain numbers and strings (these need no globals). Anything
# else (a model class, an optimizer object) needs --allow-pickle.
SAFE_GLOBALS = {
    ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "slice"), ("builtins", "complex"),
    ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"), ("torch.nn.parameter", "Parameter"),
    ("torch", "Size"), ("torch", "Tensor"), ("torch", "device"), ("torch", "dtype"),
    ("torch", "float32"), ("torch", "float16"), ("torch", "bfloat16"), ("torch", "float64"),
    ("torch", "int64"), ("torch", "int32"), ("torch", "uint8"), ("torch", "bool"),
}


def check_pickle_globals(path):
    """Refuses (ExportError) a .pth whose pickle refers to anything outside
    SAFE_GLOBALS and torch storage types. The pickle is walked by an unpickler
    that builds nothing: every allowed global is replaced by a stub, so no code
    from the file runs. Handles torch's zip format and the legacy one."""
    import io
    import pickle
    import zipfile

    import collections

    class Refused(pickle.UnpicklingError):
        pass

    class Stub(dict):
        """Stands in for tensors, storages and parameters; accepts anything."""

        def __init__(self, *a, **k):
            dict.__init__(self)

        def __call__(self, *a, **k):
            return Stub()

        def __setstate__(self, state):
            pass

    real = {("collections", "OrderedDict"): collections.OrderedDict, ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice,
            ("builtins", "complex"): complex}

    class DryUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in real:
                return real[(module, name)]
            if (module, name) in SAFE_GLOBALS or (module.startswith("torch")
                                                  and name.endswith("Storage")):
                return Stub
            raise Refused("%s.%s" % (module, name))

        def persistent_load(self, pid):
            return Stub()

    def dry(stream):
        u = DryUnpickler(stream, encoding="utf-8")
        return u.load()

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                pkl = [n for n in z.namelist() if n.endswith("data.pkl")]
                if not pkl:
                    raise ExportError("%s: a zip file without data.pkl; not a torch.save file" % path)
                dry(io.BytesIO(z.read(pkl[0])))
        else:
            with open(path, "rb") as f:
                for _ in range(4):  # magic, protocol, sys info, the object
                    dry(f)
    except Refused as e:
        raise ExportError("%s holds a pickled %s, not just tensors (a whole model or another "
                          "object); if you trust the file, pass --allow-pickle to load it "
                          "(unpickling can run code from the file)" % (path, e))
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, zipfile.BadZipFile) as e:
        raise ExportError("%s is not a file written by torch.save (%s)" % (path, e))


def load_file(path, allow_pickle, torch):
    """torch.load, after check_pickle_globals unless ALLOW_PICKLE: a .pth file is
    a pickle, and a pickle can run any code. torch's own weights_only mode is
    not used because Debian's torch (1.13) refuses even a float in a checkpoint
    (and ignores a restricted pickle_module)."""
    if not allow_pickle:
        check_pickle_globals(path)
    try:
        return torch.load(path, map_location="cpu")
    except (RuntimeError, OSError) as e:
        raise ExportError("%s: torch cannot read it: %s" % (path, str(e).splitlines()[0][:200]))


def find_state_dict(obj, torch):
    """The tensor dictionary inside whatever torch.load returned."""
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "net", "module"):
            inner = obj.get(key)
            if isinstance(inner, torch.nn.Module):
                return inner.state_dict()
            if isinstance(inner, dict) and any(torch.is_tensor(v) for v in inner.values()):
                return inner
        if any(torch.is_tensor(v) for v in obj.values()):
            return obj
    raise ExportError("found no state dict (a dict of tensors) in the file; it holds a %s"
                      % type(obj).__name__)


def strip_prefixes(sd):
    changed = True
    while changed:
        changed = False
        for p in PREFIXES:
            if sd and all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
    return sd


def family_of(sd):
    for fam, marker in FAMILY_MARKERS:
        if marker in sd:
            return fam
    return "resnet"  # describe_resnet names what is missing


def describe_arch(sd):
    """(arch name, summary for the report, classes) from tensor names/shapes."""
    fam = family_of(sd)
    if fam == "vgg":
        return describe_vgg(sd)
    if fam == "inception_v3":
        for need in ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.conv.weight", "fc.weight",
                     "fc.bias"):
            if need not in sd:
                raise ExportError("missing tensor %s (Inception v3)" % need)
        aux = "with" if "AuxLogits.fc.weight" in sd else "without"
        return ("inception_v3", "Inception v3 %s AuxLogits, Conv2d_1a_3x3 width %d"
                % (aux, int(sd["Conv2d_1a_3x3.conv.weight"].shape[0])),
                int(sd["fc.weight"].shape[0]))
    arch, kind, blocks, classes = describe_resnet(sd)
    return arch, "%s blocks %s, stem width %d" % (kind, "-".join(map(str, blocks)),
                                                  int(sd["conv1.weight"].shape[0])), classes


def describe_vgg(sd):
    idx = sorted({int(m.group(1)) for k in sd for m in [re.match(r"features\.(\d+)\.weight$", k)]
                  if m and len(sd[k].shape) == 4})
    bn = "features.1.running_mean" in sd
    for need in ("classifier.0.weight", "classifier.3.weight", "classifier.6.weight",
                 "classifier.6.bias"):
        if need not in sd:
            raise ExportError("missing tensor %s (VGG)" % need)
    arch = VGG_CONVS.get(len(idx), "vgg-%d" % len(idx)) + ("_bn" if bn else "")
    return (arch, "VGG, %d convolutions%s, width %d" % (len(idx), " with batchnorm" if bn else "",
                                                       int(sd["features.0.weight"].shape[0])),
            int(sd["classifier.6.weight"].shape[0]))


def describe_resnet(sd):
    """(arch name, block kind, blocks per stage, classes) from tensor names/shapes."""
    if "conv1.weight" not in sd:
        if any(k.startswith("conv1.0.") for k in sd):
            raise ExportError("this is a deep-stem ResNet (resnet*d / resnet*c: conv1.0, conv1.1, "
                              "...); only the torchvision stem (one 7x7 conv1) is supported")
        raise ExportError("no conv1.weight: not a torchvision/timm ResNet, nor a VGG "
                          "(features.N) or Inception v3 (Mixed_5b...) (first keys: %s)"
                          % ", ".join(list(sd)[:5]))
    kind = "bottleneck" if "layer1.0.conv3.weight" in sd else "basic"
    blocks = []
    for stage in range(1, 5):
        idx = {int(m.group(1)) for k in sd for m in [re.match(r"layer%d\.(\d+)\." % stage, k)] if m}
        if not idx:
            raise ExportError("no layer%d blocks: not a 4-stage ResNet" % stage)
        if idx != set(range(len(idx))):
            raise ExportError("layer%d has blocks %s: numbering has gaps" % (stage, sorted(idx)))
        blocks.append(len(idx))
    for need in ("bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "fc.weight",
                 "fc.bias"):
        if need not in sd:
            raise ExportError("missing tensor %s" % need)
    arch = ARCHS.get((kind, tuple(blocks)), "resnet-%s-%s" % (kind, "-".join(map(str, blocks))))
    return arch, kind, blocks, int(sd["fc.weight"].shape[0])


NAME_PATTERNS = {
    "vgg": r"^(features\.\d+\.(weight|bias|running_mean|running_var)|classifier\.[036]\.(weight|bias))$",
    "inception_v3": r"^((Conv2d_[1-4][ab]_[13]x[13]|Mixed_[5-7][a-e](\.branch\w+)?|AuxLogits\.conv[01])"
                    r"\.(conv\.weight|bn\.(weight|bias|running_mean|running_var))"
                    r"|(AuxLogits\.)?fc\.(weight|bias))$",
}


def check_names(sd):
    fam = family_of(sd)
    if fam in NAME_PATTERNS:
        bad = [k for k in sd if not re.match(NAME_PATTERNS[fam], k)]
        if bad:
            raise ExportError("tensors that a torchvision %s does not have: %s%s"
                              % (fam, ", ".join(bad[:5]), ", ..." if len(bad) > 5 else ""))
        return
    pat = re.compile(r"^(conv1\.weight|bn1\.(weight|bias|running_mean|running_var)"
                     r"|layer[1-4]\.\d+\.(conv[1-3]\.weight|bn[1-3]\.(weight|bias|running_mean|running_var)"
                     r"|downsample\.0\.weight|downsample\.1\.(weight|bias|running_mean|running_var))"
                     r"|fc\.(weight|bias))$")
    bad = [k for k in sd if not pat.match(k)]
    if bad:
        raise ExportError("tensors that a torchvision ResNet does not have: %s%s (timm models with "
                          "extra parts such as attention or SE blocks are not supported)"
                          % (", ".join(bad[:5]), ", ..." if len(bad) > 5 else ""))


def check_loadable(sd, kind, blocks):
    """Refuses what sweep-worker cannot load although the names fit (its rule in
    worker/engine/resnet.c desc_from_file): a 3-channel conv1; inside each
    block every conv takes the channels the one before gives, i.e. no grouped
    convolutions (ResNeXt's groups=32 conv2 has the torchvision names and block
    counts of a resnet50); a downsample of shape (out, in, 1, 1) where the block
    changes stride or width; fc of shape (classes, features)."""
    def shape(name):
        return [int(d) for d in sd[name].shape]
    c1 = shape("conv1.weight")
    if len(c1) != 4 or c1[1] != 3:
        raise ExportError("conv1.weight has shape %s; sweep-worker needs (width, 3, k, k) for "
                          "RGB images" % c1)
    nconv = 3 if kind == "bottleneck" else 2
    cin = c1[0]
    for s, n in enumerate(blocks, 1):
        for j in range(n):
            prev = cin
            for c in range(1, nconv + 1):
                name = "layer%d.%d.conv%d.weight" % (s, j, c)
                if name not in sd:
                    raise ExportError("missing tensor %s" % name)
                w = shape(name)
                if len(w) != 4:
                    raise ExportError("%s has shape %s; expected a 4-d convolution" % (name, w))
                if w[1] != prev:
                    groups = prev // w[1] if w[1] and prev % w[1] == 0 else None
                    why = (": a grouped convolution (groups=%d, width_per_group=%d, as in "
                           "ResNeXt)" % (groups, w[0] // groups) if groups and groups > 1 else "")
                    raise ExportError(
                        "%s takes %d input channels but the layer before gives %d%s; sweep-worker "
                        "loads only ResNets whose convolutions are not grouped (torchvision "
                        "resnet18/34/50/101/152 and wide_resnet50_2/101_2, timm's resnet*)"
                        % (name, w[1], prev, why))
                prev = w[0]
            ds = "layer%d.%d.downsample.0.weight" % (s, j)
            need = (s > 1 and j == 0) or cin != prev
            if ds in sd:
                if shape(ds) != [prev, cin, 1, 1]:
                    raise ExportError("%s has shape %s; the block needs [%d, %d, 1, 1]"
                                      % (ds, shape(ds), prev, cin))
            elif need:
                raise ExportError("missing tensor %s (layer%d block %d changes stride or width)"
                                  % (ds, s, j))
            cin = prev
    fc = shape("fc.weight")
    if len(fc) != 2 or fc[1] != cin:
        raise ExportError("fc.weight has shape %s; the network gives %d features, so it must be "
                          "[classes, %d]" % (fc, cin, cin))


def tensors_f32(sd, torch):
    """[(name, shape, bytes)] in the file's order, float32 little-endian."""
    out = []
    for name, t in sd.items():
        if name.endswith("num_batches_tracked"):
            continue
        if not torch.is_tensor(t):
            raise ExportError("%s is a %s, not a tensor" % (name, type(t).__name__))
        if not t.is_floating_point():
            raise ExportError("%s has dtype %s; expected floating point" % (name, t.dtype))
        a = t.detach().to("cpu", torch.float32).contiguous()
        if not bool(torch.isfinite(a).all()):
            raise ExportError("%s contains NaN or infinite values" % name)
        data = a.numpy().astype("<f4", copy=False).tobytes() if hasattr(a, "numpy") else None
        if data is None:
            data = struct.pack("<%df" % a.numel(), *a.flatten().tolist())
        out.append((name, list(a.shape), data))
    return out


def write_safetensors(path, tensors, metadata):
    """Writes TENSORS [(name, shape, F32 bytes)] and string METADATA atomically."""
    header = {}
    offset = 0
    for name, shape, data in tensors:
        n = 1
        for d in shape:
            n *= d
        if len(data) != 4 * n:
            raise ExportError("%s: %d bytes for shape %s" % (name, len(data), shape))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)  # data section 8-byte aligned, as the reference writer does
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(hjson)))
            f.write(hjson)
            for _, _, data in tensors:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def pretrained(spec, torch):
    """(state dict, class names or None) of a library's pretrained model."""
    if spec.startswith("timm:"):
        try:
            import timm
        except ImportError:
            raise ExportError("timm is not installed (pip install timm)")
        model = timm.create_model(spec[5:], pretrained=True)
        return model.state_dict(), None
    try:
        import torchvision
    except ImportError:
        raise ExportError("torchvision is not installed; on Debian: sudo apt-get install "
                          "python3-torchvision")
    name = spec[len("torchvision:"):] if spec.startswith("torchvision:") else spec
    if not hasattr(torchvision.models, name):
        raise ExportError("torchvision has no model %r" % name)
    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        model = getattr(torchvision.models, name)(weights=weights)
        classes = list(weights.meta.get("categories") or []) or None
    except AttributeError:  # torchvision < 0.14
        model = getattr(torchvision.models, name)(pretrained=True)
        classes = None
    return model.state_dict(), classes


def main(argv):
    ap = argparse.ArgumentParser(
        prog="export-weights.py",
        description="Convert a torchvision/timm ResNet (.pth or a pretrained download) into the "
                    "safetensors file sweep-worker loads.")
    ap.add_argument("paths", nargs="+", metavar="MODEL.pth OUT.safetensors",
                    help="the .pth/.pt file (state dict, checkpoint or model) and the "
                         ".safetensors file to write; only OUT with --pretrained")
    ap.add_argument("--pretrained", metavar="NAME",
                    help="download a library model instead: resnet18, torchvision:resnet50, "
                         "timm:resnet34 (needs internet)")
    ap.add_argument("--input-size", type=int, default=None, metavar="N",
                    help="input side the weights were trained at (default 224; 299 for "
                         "Inception v3); jobs without model.input_size use it")
    ap.add_argument("--classes", metavar="FILE",
                    help="class names, one per line, in the order of fc's rows")
    ap.add_argument("--mean", default=None, metavar="R,G,B",
                    help="normalisation mean the weights were trained with (ImageNet's); "
                         "training, eval and predict use it")
    ap.add_argument("--std", default=None, metavar="R,G,B",
                    help="normalisation std (ImageNet's); used as --mean is")
    ap.add_argument("--allow-pickle", action="store_true",
                    help="load a whole pickled model (runs code from the file: trusted files only)")
    args = ap.parse_args(argv)
    want = 1 if args.pretrained else 2
    if len(args.paths) != want:
        ap.error("give MODEL.pth OUT.safetensors, or --pretrained NAME OUT.safetensors")
    args.input = None if args.pretrained else args.paths[0]
    args.output = args.paths[-1]
    if args.input_size is not None and not 8 <= args.input_size <= 4096:
        ap.error("--input-size must be in 8..4096")

    def triple(s, what, default):
        if s is None:
            return default
        try:
            v = [float(x) for x in s.split(",")]
        except ValueError:
            v = []
        if len(v) != 3:
            ap.error("%s must be three comma-separated numbers, got %r" % (what, s))
        return v
    mean = triple(args.mean, "--mean", IMAGENET_MEAN)
    std = triple(args.std, "--std", IMAGENET_STD)

    try:
        if args.input and not os.path.isfile(args.input):
            raise ExportError("%s: no such file" % args.input)
        torch = load_torch()
        classes = None
        if args.pretrained:
            sd, classes = pretrained(args.pretrained, torch)
        else:
            obj = load_file(args.input, args.allow_pickle, torch)
            sd = find_state_dict(obj, torch)
        sd = strip_prefixes(dict(sd))
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
        arch, summary, nclasses = describe_arch(sd)
        check_names(sd)
        if family_of(sd) == "resnet":
            _, kind, blocks, _ = describe_resnet(sd)
            check_loadable(sd, kind, blocks)
        if args.input_size is None:
            args.input_size = 299 if arch == "inception_v3" else 224
        if args.classes:
            with open(args.classes, encoding="utf-8") as f:
                classes = [line.strip() for line in f if line.strip()]
        if classes is not None and len(classes) != nclasses:
            raise ExportError("%d class names for an fc with %d outputs"
                              % (len(classes), nclasses))
        tensors = tensors_f32(sd, torch)
        meta = {"format": "sweepd-weights-1", "arch": arch, "input_size": args.input_size,
                "mean": json.dumps(mean), "std": json.dumps(std),
                "source": args.pretrained or os.path.basename(args.input)}
        if classes is not None:
            meta["classes"] = json.dumps(classes)
        write_safetensors(args.output, tensors, meta)
    except ExportError as e:
        print("export-weights: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("export-weights: %s" % e, file=sys.stderr)
        return 1
    nparams = sum(len(d) // 4 for _, _, d in tensors)
    print("export-weights: wrote %s: %s (%s), %d tensors, %.1fM parameters, %d classes, input %d, "
          "mean %s, std %s"
          % (args.output, arch, summary, len(tensors), nparams / 1e6, nclasses, args.input_size,
             ",".join("%g" % v for v in mean), ",".join("%g" % v for v in std)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
