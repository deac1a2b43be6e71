#!/usr/bin/env python3
"""Concat written in place: producers write straight into slices of the Concat's
output (src/engine/plan_concat.c), DenseNet's concat chains share one buffer per block.

usage: test_concat.py REMODEL SPATIAL_PLAN

Every model is built here with the onnx package and run by `remodel run`, fused and
with --no-fuse. Expected outputs come from onnxruntime (tests/ort/ort_run.js) on the
same model and input; an output matches when max |a - b| <= 1e-4 max |b|. The cases
are the ones where placing an input in a slice could go wrong: an input read again
after the Concat, an input that is a graph output, the output a graph output, a
Concat of Concats (at offset 0 and further on), one input twice, two Concats sharing
an input, a residual Add that would accumulate into a placed input, slices off the
channel block, batch 2, plain layouts on C kernels. SPATIAL_PLAN (tests/spatial_plan.c)
prints the plan: where a case must be copy-free, its Concat steps must execute nothing.
Nothing is timed.
"""

import shutil
import sys
import tempfile

REMODEL, SPATIAL_PLAN = sys.argv[1], sys.argv[2]

import numpy as np  # noqa: E402
import ortcheck  # noqa: E402
from rmtest import Suite  # noqa: E402

T = Suite("RM_CONCAT_ONLY")  # RM_CONCAT_ONLY=text: only the cases whose name contains it
WORK = tempfile.mkdtemp(prefix="rm_concat_")

randn, Net = ortcheck.randn, ortcheck.Net
check = ortcheck.Checker(T, REMODEL, SPATIAL_PLAN, WORK).check


def stem(net, c=16):
    """A Winograd-sized 3x3 conv: the plan then runs its convs channel-blocked."""
    return net.conv("x", 16, c)


X = {"x": randn(1, 16, 8, 8)}

# DenseNet: each layer reads the Concat of all earlier features (BN, Relu, 1x1, 3x3)
# and the block ends in a Concat of them all; the next block starts from a pool
for chain_out in (False, True):
    net = Net()
    feats = [stem(net, 32)]
    for block in range(2):
        for layer in range(4):
            c = 32 + 16 * layer
            y = net.cat(feats)
            y = net.node("Relu", [net.bn(y, c)])
            y = net.conv(y, c, 32, k=1)
            feats.append(net.conv(y, 32, 16, relu=False))
        y = net.cat(feats)
        if block == 0:
            y = net.conv(net.node("Relu", [net.bn(y, 96)]), 96, 32, k=1)
            feats = [net.node("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2])]
    outs = [y, feats[2]] if chain_out else [net.conv(y, 96, 16, k=1)]
    check("densenet chain" + (" with a feature as graph output" if chain_out else ""), net, X, outs,
          in_place=None if chain_out else True)

# an input read again after the Concat (its slice must outlive the Concat's readers)
net = Net()
a, b = stem(net), net.conv("x", 16, 16)
y = net.conv(net.cat([a, b]), 32, 16)
z = net.conv(a, 16, 16)
check("input read after the concat", net, X, [net.node("Add", [y, z])], in_place=True)

# an input that is a graph output keeps its own buffer: the Concat copies
net = Net()
a, b = stem(net), net.conv("x", 16, 16)
y = net.conv(net.cat([a, b]), 32, 16)
check("input is a graph output", net, X, [y, a], in_place=False)

# the Concat's output is a graph output (its inputs live in that buffer)
net = Net()
a, b = stem(net), net.conv("x", 16, 16)
y = net.cat([a, b])
check("output is a graph output", net, X, [y, net.conv(y, 32, 16)], in_place=True)

# Concat of Concats: nested at offset 0 and at offset 16, the inner one read elsewhere
# too; both nestings of one inner Concat cannot share a buffer: one of them copies
for order in ("ab,c", "c,ab", "both"):
    net = Net()
    a, b, c = stem(net), net.conv("x", 16, 16), net.conv("x", 16, 16)
    ab = net.cat([a, b])
    outs = []
    if order != "c,ab":
        outs.append(net.conv(net.cat([ab, c]), 48, 16))
    if order != "ab,c":
        outs.append(net.conv(net.cat([c, ab]), 48, 16))
    y = outs[0] if len(outs) == 1 else net.node("Add", outs)
    check(f"concat of concats ({order})", net, X, [net.node("Add", [y, net.conv(ab, 32, 16)])],
          in_place=True if order != "both" else None)

# a Concat of a Concat's inputs in another order, and the flattened form of a nest
net = Net()
a, b, c = stem(net), net.conv("x", 16, 16), net.conv("x", 16, 16)
ab = net.cat([a, b])
flat, ba = net.cat([a, b, c]), net.cat([b, a])
y = net.node("Add", [net.conv(flat, 48, 16), net.conv(ba, 32, 16)])
check("concats sharing inputs", net, X, [net.node("Add", [y, net.conv(ab, 32, 16)])])

# one input twice
net = Net()
a = stem(net)
check("same input twice", net, X, [net.conv(net.cat([a, a, net.conv("x", 16, 16)]), 48, 16)])

# a residual Add after the Concat whose addend is a placed input: the conv must not
# accumulate into the slice (the Concat's output is read after it)
net = Net()
a, b = stem(net), net.conv("x", 16, 16)
y = net.cat([a, b])
z = net.node("Add", [net.conv("x", 16, 16, relu=False), a])
check("residual add on a placed input", net, X, [net.conv(y, 32, 16), z], in_place=True)

# slices that do not start on a 16-channel block, and batch 2: copied; off the block, by
# the engine's own copy (oneDNN's reference concat took 35% of a pruned DenseNet's run)


def blocked_copy(steps):
    cats = [s for s in steps if s["op"] == "Concat"]
    assert cats and all(s["blocked_copy"] and not s["onednn"] for s in cats), f"not the blocked copy: {cats}"


net = Net()
a, b = stem(net, 24), net.conv("x", 16, 16)
check("slice off the block", net, X, [net.conv(net.cat([a, b]), 40, 16)], in_place=blocked_copy)
# three inputs, 8 + 12 + 20 channels: input blocks split over two output blocks, the last
# output block half padding; batch 2
for n in (1, 2):
    net = Net()
    parts = [net.conv("x", 16, c) for c in (8, 12, 20)]
    check(f"blocks split, batch {n}", net, {"x": randn(n, 16, 8, 8)}, [net.conv(net.cat(parts), 40, 16)],
          in_place=blocked_copy)


def conv_nd(net, x, cin, cout, rank):
    """A 3-wide conv over rank - 2 spatial axes (Conv1d, Conv3d)."""
    w, b = net.name("w"), net.name("b")
    k = (3,) * (rank - 2)
    net.inits[w] = (randn(cout, cin, *k) / np.sqrt(cin * 3 ** (rank - 2))).astype(np.float32)
    net.inits[b] = randn(cout) * 0.1
    return net.node("Relu", [net.node("Conv", [x, w, b], pads=[1] * (2 * (rank - 2)))])


# the same channel counts on 1-D and 3-D activations (their convs run channels-last: the
# Concat is oneDNN's, on the same offsets)
for rank, shape in ((3, (1, 16, 24)), (5, (1, 16, 4, 6, 6))):
    net = Net()
    parts = [conv_nd(net, "x", 16, c, rank) for c in (8, 12)]
    check(f"blocks split, rank {rank}", net, {"x": randn(*shape)}, [conv_nd(net, net.cat(parts), 20, 16, rank)])
net = Net()
a, b = stem(net), net.conv("x", 16, 16)
check("batch 2", net, {"x": randn(2, 16, 8, 8)}, [net.conv(net.cat([a, b]), 32, 16)], in_place=False)

# plain layouts, C kernels writing into the slices: channels of [1, C, H, W], a [1, N]
# feature vector, and an inner axis after dims of 1
net = Net()
p, q = net.node("Sigmoid", ["u"]), net.node("Tanh", ["u"])
pq = net.cat([p, q, net.node("Abs", ["u"])])
check("plain channels", net, {"u": randn(1, 3, 5, 7)}, [net.node("Relu", [pq]), p], in_place=None)
net = Net()
p, q = net.node("Sigmoid", ["v"]), net.node("Neg", ["v"])
r = net.cat([q, p, q], axis=-1)
check("plain vectors", net, {"v": randn(1, 37)}, [net.node("Exp", [r])])
net = Net()
p, q = net.node("Sigmoid", ["w"]), net.node("Neg", ["w"])
check("plain inner axis", net, {"w": randn(1, 1, 4, 6)}, [net.node("Exp", [net.cat([p, q], axis=2)])])

# ShuffleNet: channel halves by Slice, a branch on one, Concat, and the channel shuffle
# (Reshape [N, g, C/g, H, W], Transpose (0, 2, 1, 3, 4), Reshape back): one step of
# reorders straight into the shuffled output, Slices of it as views


def shuffle(net, x, c, g=2, n=1):
    r = net.node("Reshape", [x, net.const([n, g, c // g, 8, 8])])
    t = net.node("Transpose", [r], perm=[0, 2, 1, 3, 4])
    return net.node("Reshape", [t, net.const([n, -1, 8, 8])])


def halves(net, x, c):
    return [net.node("Slice", [x, net.const([lo]), net.const([hi]), net.const([1])])
            for lo, hi in ((0, c // 2), (c // 2, c))]


def shuffle_plan(n_units, n_in=2, views=0):
    """Every shuffle fused into its Concat's step (n_in reorders); the last `views`
    Slices are views (a blocked input's Slices run the C kernel)."""
    def test(steps):
        ops = [s["op"] for s in steps]
        assert "Transpose" not in ops and "Reshape" not in ops, f"shuffle not fused: {ops}"
        cats = [s for s in steps if s["op"] == "Concat"]
        assert len(cats) == n_units and all(s["execs"] == n_in for s in cats), f"Concat steps {cats}"
        sl = [s for s in steps if s["op"] == "Slice"][-views:] if views else []
        assert all(s["execs"] == 0 and s["onednn"] for s in sl), f"Slice steps {sl}"
    return test


for stem_c, name in ((32, "blocked"), (0, "plain input")):
    net = Net()
    x = stem(net, 32) if stem_c else net.node("Sigmoid", ["x32"])
    for unit in range(3):
        x1, x2 = halves(net, x, 32)
        x = shuffle(net, net.cat([x1, net.conv(x2, 16, 16)]), 32)
    inputs = X if stem_c else {"x32": randn(1, 32, 8, 8)}
    check(f"shufflenet units ({name})", net, inputs, [net.conv(x, 32, 16)], in_place=shuffle_plan(3, views=4 if stem_c else 6))

# four inputs into four groups; a group split over two inputs; batch 2; a shuffle
# whose Concat is read elsewhere (not fused: the plain ops run)
net = Net()
parts = [net.conv("x", 16, 8, relu=k % 2 == 0) for k in range(4)]
check("shuffle of four groups", net, X, [net.conv(shuffle(net, net.cat(parts), 32, g=4), 32, 16)],
      in_place=shuffle_plan(1, n_in=4))
net = Net()
parts = [net.conv("x", 16, 8), net.conv("x", 16, 16), net.conv("x", 16, 8)]
check("shuffle group over two inputs", net, X, [shuffle(net, net.cat(parts), 32)])
net = Net()
a, b = stem(net), net.conv("x", 16, 16)
check("shuffle batch 2", net, {"x": randn(2, 16, 8, 8)}, [shuffle(net, net.cat([a, b]), 32, n=2)],
      in_place=shuffle_plan(1))
net = Net()
a, b = stem(net), net.conv("x", 16, 16)
cab = net.cat([a, b])
check("shuffle of a concat read elsewhere", net, X, [shuffle(net, cab, 32), net.conv(cab, 32, 16)])

# ShuffleNet's head, a global ReduceMean (and Max) of a channels-last or blocked
# input without keepdims, runs as global pooling; 24 channels blocked stay a reduction
for c, name in ((32, "blocked"), (24, "blocked, 24 channels"), (0, "channels-last")):
    net = Net()
    y = stem(net, c) if c else net.conv("x", 16, 32, k=1)
    outs = [net.node(op, [y], axes=[2, 3], keepdims=0) for op in ("ReduceMean", "ReduceMax")]
    check(f"global reduce ({name})", net, X, outs)

# a Slice view read after its input's other readers, and a Slice that is not
# contiguous (inner axis, step 2): copied
net = Net()
a = net.node("Sigmoid", ["x"])
lo, hi = halves(net, a, 16)
y = net.node("Add", [net.node("Exp", [hi]), net.node("Tanh", [lo])])
check("slice views", net, X, [net.node("Mul", [net.node("Neg", [lo]), y]), net.node("Exp", [a])])
net = Net()
a = net.node("Sigmoid", ["x"])
lo, hi = halves(net, a, 16)
check("slice view as graph output", net, X, [hi, net.node("Exp", [net.node("Tanh", [lo])]), net.conv("x", 16, 16)])
net = Net()
a = net.node("Sigmoid", ["x"])
q = net.node("Slice", [a, net.const([0]), net.const([8]), net.const([3]), net.const([2])])
check("strided slice", net, X, [net.node("Exp", [q])])

shutil.rmtree(WORK, ignore_errors=True)
T.finish()
