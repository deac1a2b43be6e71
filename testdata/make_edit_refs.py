#!/usr/bin/python3
"""PyTorch references for remodel's structural edits (replace, prune).

For each case the same edit is done on the nn.Module itself: the model is rebuilt with
exactly the weights make_models.py exported (same constructors, same seeds), the layer is
swapped for a new nn.Conv2d whose weights follow remodel's documented `--init keep` rule,
dependents are sliced or extended the documented way, and PyTorch computes the output on
the model's reference input. Nothing here runs remodel or an ONNX runtime.

`--init keep` rule (what both sides implement independently):
  new.weight[o, i, y, x] = old.weight[o, i, y + dy, x + dx] where that index exists, else 0,
  with dy = (old_kh - new_kh) // 2 and dx = (old_kw - new_kw) // 2 (Python floor division:
  kernels are cropped or zero-padded about their centre), for o < min(out), i < min(in/groups);
  new.bias[o] = old.bias[o] for o < min(out) (0 where the old conv had none), else 0.
`--propagate` rule for a changed out_channels C -> C':
  BatchNorm2d keeps its first min(C, C') channels; new channels get weight 1, bias 0,
  running_mean 0, running_var 1. A depthwise conv (groups == in == out) follows with
  groups = out = C' and its weight/bias keep their first channels. The next conv keeps
  in-channels [0, min(C, C')) of its weight; new in-channels are 0.

Writes edits/cases.json (and the same as edits/cases.tsv for C) and edits/<case>/output_0.pb (inputs are the models' own
<model>/test_data_set_0/input_0.pb). Run: /usr/bin/python3 testdata/make_edit_refs.py
"""

import json
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_models as mm  # noqa: E402  (same constructors and seeds as the exports)


def rebuild(name):
    """The exact nn.Module make_models.py exported as <name>.onnx, and its input."""
    for index, (n, make, shape, _options) in enumerate(mm.MODELS):
        if n != name:
            continue
        torch.manual_seed(mm.SEED + index)
        gen = torch.Generator().manual_seed(mm.SEED + 1000 + index)
        model = make()
        if name not in mm.UNTRAINED:
            mm.randomize_bn(model, gen)
        model.eval()
        x = onnx.numpy_helper.to_array(
            onnx.load_tensor(os.path.join(HERE, name, "test_data_set_0", "input_0.pb")))
        ref = onnx.numpy_helper.to_array(
            onnx.load_tensor(os.path.join(HERE, name, "test_data_set_0", "output_0.pb")))
        with torch.no_grad():
            y = model(torch.from_numpy(x.copy())).numpy()
        # the rebuilt module must be the exported one, or every reference below is wrong
        assert np.array_equal(y, ref), f"{name}: rebuilt model differs from the export"
        return model, torch.from_numpy(x.copy())
    raise KeyError(name)


def get(model, path):
    m = model
    for part in path.split("."):
        m = m[int(part)] if part.isdigit() else getattr(m, part)
    return m


def put(model, path, new):
    parent, _, last = path.rpartition(".")
    p = get(model, parent) if parent else model
    if last.isdigit():
        p[int(last)] = new
    else:
        setattr(p, last, new)


def keep_weights(old, new):
    """remodel's --init keep rule, on torch tensors."""
    w_old, w_new = old.weight.detach(), torch.zeros_like(new.weight)
    o = min(w_old.shape[0], w_new.shape[0])
    i = min(w_old.shape[1], w_new.shape[1])
    for y in range(w_new.shape[2]):
        for x in range(w_new.shape[3]):
            yo = y + (w_old.shape[2] - w_new.shape[2]) // 2
            xo = x + (w_old.shape[3] - w_new.shape[3]) // 2
            if 0 <= yo < w_old.shape[2] and 0 <= xo < w_old.shape[3]:
                w_new[:o, :i, y, x] = w_old[:o, :i, yo, xo]
    with torch.no_grad():
        new.weight.copy_(w_new)
        if new.bias is not None:
            new.bias.zero_()
            if old.bias is not None:
                new.bias[:o] = old.bias.detach()[:o]


def resize_bn(bn, c):
    new = nn.BatchNorm2d(c, eps=bn.eps, momentum=bn.momentum).eval()
    k = min(c, bn.num_features)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new, name)[:k] = getattr(bn, name).detach()[:k]
    return new


def resize_in(conv, c):
    new = nn.Conv2d(c, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None).eval()
    k = min(c, conv.in_channels)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, :k] = conv.weight.detach()[:, :k]
        if conv.bias is not None:
            new.bias.copy_(conv.bias.detach())
    return new


def resize_depthwise(conv, c):
    new = nn.Conv2d(c, c, conv.kernel_size, conv.stride, conv.padding, conv.dilation, c,
                    conv.bias is not None).eval()
    k = min(c, conv.out_channels)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:k] = conv.weight.detach()[:k]
        if conv.bias is not None:
            new.bias.zero_()
            new.bias[:k] = conv.bias.detach()[:k]
    return new


def replace(model, path, conv_args, conv_kwargs):
    old = get(model, path)
    new = nn.Conv2d(*conv_args, **conv_kwargs).eval()
    keep_weights(old, new)
    put(model, path, new)
    return new.out_channels


# (case, model, module path, SPEC as the user types it, nn.Conv2d args/kwargs, dependents)
# dependents: list of (kind, path) followed with --propagate, in order.
CASES = [
    ("same_shape", "tiny_resnet", "layer1.0.conv1", "Conv2d(8, 8, 3, padding=1, bias=False)",
     (8, 8, 3), dict(padding=1, bias=False), []),
    ("kernel5", "tiny_resnet", "layer1.0.conv1", "Conv2d(8, 8, kernel_size=5, padding=2, bias=False)",
     (8, 8), dict(kernel_size=5, padding=2, bias=False), []),
    ("kernel1_bias", "tiny_resnet", "layer2.0.conv1", "Conv2d(8, 16, kernel_size=(1, 1), stride=2)",
     (8, 16), dict(kernel_size=(1, 1), stride=2), []),
    ("groups2", "tiny_resnet", "layer1[1].conv2", "Conv2d(8, 8, 3, 1, 1, groups=2, bias=False)",
     (8, 8, 3, 1, 1), dict(groups=2, bias=False), []),
    ("dilated_rect", "tiny_resnet", "layer1.0.conv2",
     "Conv2d(8, 8, kernel_size=(3, 5), padding=(2, 4), dilation=2, bias=False)",
     (8, 8), dict(kernel_size=(3, 5), padding=(2, 4), dilation=2, bias=False), []),
    ("shrink_propagate", "tiny_resnet", "layer1.0.conv1", "Conv2d(8, 5, 3, padding=1, bias=False)",
     (8, 5, 3), dict(padding=1, bias=False), [("bn", "layer1.0.bn1"), ("in", "layer1.0.conv2")]),
    ("grow_propagate", "tiny_resnet", "layer2.0.conv1",
     "Conv2d(8, 20, 3, stride=2, padding=1, bias=False)",
     (8, 20, 3), dict(stride=2, padding=1, bias=False), [("bn", "layer2.0.bn1"), ("in", "layer2.0.conv2")]),
    ("depthwise_propagate", "mobilenet_tiny", "features.2.conv.0.0",
     "Conv2d(16, 48, kernel_size=1, bias=False)",
     (16, 48), dict(kernel_size=1, bias=False),
     [("bn", "features.2.conv.0.1"), ("dw", "features.2.conv.1.0"), ("bn", "features.2.conv.1.1"),
      ("in", "features.2.conv.2")]),
    ("seed_propagate", "resnet18", "layer4.0.conv1", "Conv2d(256, 111, 3, 2, 1)",
     (256, 111, 3, 2, 1), {}, [("bn", "layer4.0.bn1"), ("in", "layer4.0.conv2")]),
    ("shared", "shared_init", "branch_a", "Conv2d(8, 8, kernel_size=1, bias=False)",
     (8, 8), dict(kernel_size=1, bias=False), []),
    # the seed's own edit: fewer in_channels too, so layer3's residual group is pruned first
    ("seed_in_propagate", "resnet18", "layer4[0].conv1", "Conv2d(111, 111, 3, 2, 1)",
     (111, 111, 3, 2, 1), {}, [("bn", "layer4.0.bn1"), ("in", "layer4.0.conv2")]),
]


# ---- pruning ------------------------------------------------------------------------
#
# Each case removes channels the way remodel's `prune` must: the slicing below is written
# out by hand for each model (which convs produce the channels, which BatchNorms and
# depthwise convs carry them, which convs and Linears read them), so it is an
# independent statement of what a correct dependency analysis does.
#   out: conv output rows (and bias) kept;  bn: BatchNorm channels kept;
#   dw: depthwise conv channels (and groups) kept;  in: conv input channels kept
#   (with an optional offset into a Concat);  fc: Linear in_features kept.

def keep_list(n, removed):
    return [c for c in range(n) if c not in set(removed)]


def keep_rows(conv, keep, in_channels, groups):
    """conv with only the output channels in keep."""
    new = nn.Conv2d(in_channels, len(keep), conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, groups, conv.bias is not None).eval()
    with torch.no_grad():
        new.weight.copy_(conv.weight[keep])
        if conv.bias is not None:
            new.bias.copy_(conv.bias[keep])
    return new


def slice_out(conv, keep):
    return keep_rows(conv, keep, conv.in_channels, conv.groups)


def slice_bn(bn, keep):
    new = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum).eval()
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new, name).copy_(getattr(bn, name)[keep])
    return new


def slice_dw(conv, keep):
    return keep_rows(conv, keep, len(keep), len(keep))


def slice_in(conv, keep):
    new = nn.Conv2d(len(keep), conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None).eval()
    with torch.no_grad():
        new.weight.copy_(conv.weight[:, keep])
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def slice_fc(fc, keep):
    new = nn.Linear(len(keep), fc.out_features, fc.bias is not None).eval()
    with torch.no_grad():
        new.weight.copy_(fc.weight[:, keep])
        new.bias.copy_(fc.bias)
    return new


SLICERS = {"out": slice_out, "bn": slice_bn, "dw": slice_dw, "in": slice_in, "fc": slice_fc}

# (case, model, module PATH given to prune, channels removed, [(kind, module, offset)])
PRUNE_CASES = [
    ("prune_bn_kept", "tiny_resnet", "layer1.0.conv1", [0, 3],
     [("out", "layer1.0.conv1"), ("bn", "layer1.0.bn1"), ("in", "layer1.0.conv2")]),
    ("prune_residual", "tiny_resnet", "layer1.0.conv2", [2, 6],
     [("out", "conv1"), ("bn", "bn1"), ("out", "layer1.0.conv2"), ("bn", "layer1.0.bn2"),
      ("out", "layer1.1.conv2"), ("bn", "layer1.1.bn2"), ("in", "layer1.0.conv1"),
      ("in", "layer1.1.conv1"), ("in", "layer2.0.conv1"), ("in", "layer2.0.downsample.0")]),
    ("prune_depthwise", "mobilenet_tiny", "features.2.conv.0.0", [1, 10, 20, 63],
     [("out", "features.2.conv.0.0"), ("bn", "features.2.conv.0.1"), ("dw", "features.2.conv.1.0"),
      ("bn", "features.2.conv.1.1"), ("in", "features.2.conv.2")]),
    ("prune_concat", "concat_net", "mixed.branch3x3.1.conv", [0, 5, 11],
     [("out", "mixed.branch3x3.1.conv"), ("bn", "mixed.branch3x3.1.bn"), ("in@8+12/24", "project.conv")]),
    ("prune_se", "se_net", "conv.conv", [3, 4, 30],
     [("out", "conv.conv"), ("bn", "conv.bn"), ("out", "se.fc2"), ("in", "se.fc1"), ("fc", "fc")]),
]


# ---- replace with fewer in_channels, --propagate: the group upstream is pruned ----------
#
# `replace resnet18 layer4[0].conv1 'Conv2d(111, 111, 3, 2, 1)' --propagate`: the conv reads
# layer3's residual stream (256 channels), which layer3.0.conv2, layer3.0.downsample.0 and
# layer3.1.conv2 produce. remodel's documented rule: that group keeps the 111 channels with
# the largest L1 norm of the producing convs' weights as exported (BatchNorms folded),
# summed over the three (ties: the lower index goes first), every layer of the group
# follows (written out below), then the conv is replaced as the other cases (keep rule;
# out_channels 512 -> 111 carried to bn1 and conv2).

UPSTREAM_PRODUCERS = ["/layer3/layer3.0/conv2/Conv", "/layer3/layer3.0/downsample/downsample.0/Conv",
                      "/layer3/layer3.1/conv2/Conv"]


def upstream_keep(model_name, producers, keep):
    """Channels the group keeps: the `keep` of largest summed L1 norm, from the exported weights."""
    m = onnx.load(os.path.join(HERE, f"{model_name}.onnx"))
    inits = {t.name: t for t in m.graph.initializer}
    score = None
    for node in m.graph.node:
        if node.name in producers:
            w = onnx.numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
            s = np.abs(w).reshape(w.shape[0], -1).sum(1)
            score = s if score is None else score + s
    order = sorted(range(len(score)), key=lambda c: (score[c], c))  # lowest first, ties by index
    removed = set(order[:len(score) - keep])
    # the rule must not hang on a rounding: the scores either side of the cut differ clearly
    cut = sorted(score)
    margin = (cut[len(score) - keep] - cut[len(score) - keep - 1]) / cut[-1]
    assert margin > 1e-6, f"near tie at the cut ({margin:g}): the reference would be fragile"
    return [c for c in range(len(score)) if c not in removed]


def seed_upstream(model):
    keep = upstream_keep("resnet18", UPSTREAM_PRODUCERS, 111)
    for path in ("layer3.0.conv2", "layer3.0.downsample.0", "layer3.1.conv2"):
        put(model, path, slice_out(get(model, path), keep))
    for path in ("layer3.0.bn2", "layer3.0.downsample.1", "layer3.1.bn2"):
        put(model, path, slice_bn(get(model, path), keep))
    for path in ("layer3.1.conv1", "layer4.0.downsample.0", "layer4.0.conv1"):
        put(model, path, slice_in(get(model, path), keep))


def prune_case(model, removed, steps):
    for kind, path in steps:
        m = get(model, path)
        if kind.startswith("in@"):
            # "in@OFFSET+WIDTH/TOTAL": input channels of a conv reading a Concat whose pruned
            # input occupies channels [OFFSET, OFFSET + WIDTH) of TOTAL
            span, total = kind[3:].split("/")
            offset, width = (int(v) for v in span.split("+"))
            keep = [c for c in range(int(total))
                    if not (offset <= c < offset + width and c - offset in removed)]
            put(model, path, slice_in(m, keep))
            continue
        n = {"out": lambda: m.out_channels, "bn": lambda: m.num_features, "dw": lambda: m.out_channels,
             "in": lambda: m.in_channels, "fc": lambda: m.in_features}[kind]()
        put(model, path, SLICERS[kind](m, keep_list(n, removed)))


def zeroed_model():
    """tiny_resnet whose layer1.0.conv1 channels 1 and 5 are dead: zero weights and a
    BatchNorm that maps them to 0 (weight = bias = running_mean = 0). Pruning exactly those
    channels must leave the output unchanged."""
    model, x = rebuild("tiny_resnet")
    with torch.no_grad():
        for c in (1, 5):
            model.layer1[0].conv1.weight[c] = 0
            for name in ("weight", "bias", "running_mean"):
                getattr(model.layer1[0].bn1, name)[c] = 0
    return model, x


def main():
    out = []
    for case, model_name, path, spec, args, kwargs, deps in CASES:
        model, x = rebuild(model_name)
        if case == "seed_in_propagate":
            seed_upstream(model)
        c = replace(model, path.replace("[", ".").replace("]", ""), args, kwargs)
        for kind, dep in deps:
            m = get(model, dep)
            if kind == "bn":
                put(model, dep, resize_bn(m, c))
            elif kind == "dw":
                put(model, dep, resize_depthwise(m, c))
            else:
                put(model, dep, resize_in(m, c))
        with torch.no_grad():
            y = model(x).numpy()
        d = os.path.join(HERE, "edits", case)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "output_0.pb"), "wb") as f:
            f.write(onnx.numpy_helper.from_array(np.ascontiguousarray(y), "output").SerializeToString())
        out.append({"case": case, "model": model_name, "path": path, "spec": spec,
                    "propagate": bool(deps), "max_abs_output": float(np.abs(y).max())})
        print(f"{case:20s} {model_name:15s} {path:22s} |y|max {np.abs(y).max():.4g}")
    prunes = []
    for case, model_name, path, removed, steps in PRUNE_CASES:
        model, x = rebuild(model_name)
        prune_case(model, removed, steps)
        with torch.no_grad():
            y = model(x).numpy()
        d = os.path.join(HERE, "edits", case)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "output_0.pb"), "wb") as f:
            f.write(onnx.numpy_helper.from_array(np.ascontiguousarray(y), "output").SerializeToString())
        prunes.append((case, model_name, path, ",".join(str(c) for c in removed)))
        print(f"{case:20s} {model_name:15s} {path:22s} removed {removed}")

    # a model with dead channels, exported (BatchNorm kept) with its PyTorch output
    model, x = zeroed_model()
    with torch.no_grad():
        y = model(x).numpy()
    d = os.path.join(HERE, "edits", "zeroed_resnet")
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    data = mm.export(model, x, mm.BN_KEPT)
    with open(os.path.join(HERE, "edits", "zeroed_resnet.onnx"), "wb") as f:
        f.write(data)
    with open(os.path.join(d, "test_data_set_0", "input_0.pb"), "wb") as f:
        f.write(onnx.numpy_helper.from_array(x.numpy(), "input").SerializeToString())
    with open(os.path.join(d, "test_data_set_0", "output_0.pb"), "wb") as f:
        f.write(onnx.numpy_helper.from_array(np.ascontiguousarray(y), "output").SerializeToString())
    with open(os.path.join(HERE, "edits", "prune_cases.tsv"), "w") as f:
        for p in prunes:
            f.write("\t".join(p) + "\n")

    with open(os.path.join(HERE, "edits", "cases.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    # the same list for C tests: case, model, path, propagate, spec (tab-separated)
    with open(os.path.join(HERE, "edits", "cases.tsv"), "w") as f:
        for c in out:
            f.write(f"{c['case']}\t{c['model']}\t{c['path']}\t{int(c['propagate'])}\t{c['spec']}\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
