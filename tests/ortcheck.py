"""Small graphs built with the onnx package, run by `remodel run` fused, with --no-fuse and
with --direct-conv, and compared with onnxruntime (tests/ort/ort_run.js) on the same model and
input: an output matches when max |a - b| <= 1e-4 max |b|. Optionally the fused plan, as
tests/spatial_plan prints it, is checked too. Shared by test_concat.py and test_fusion.py.
"""

import json
import os
import subprocess

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ORT_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort", "ort_run.js")
TOL = 1e-4

rng = np.random.default_rng(20261130)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


class Net:
    """A graph under construction; every helper returns its output's name."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], {}, 0

    def name(self, p):
        self.n += 1
        return f"{p}{self.n}"

    def node(self, op, ins, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k=3, relu=True):
        w, b = self.name("w"), self.name("b")
        self.inits[w] = (randn(cout, cin, k, k) / np.sqrt(cin * k * k)).astype(np.float32)
        self.inits[b] = randn(cout) * 0.1
        y = self.node("Conv", [x, w, b], pads=[k // 2] * 4)
        return self.node("Relu", [y]) if relu else y

    def const(self, vals):
        n = self.name("k")
        self.inits[n] = np.array(vals, np.int64)
        return n

    def bn(self, x, c):
        names = [self.name(p) for p in ("s", "t", "m", "v")]
        self.inits[names[0]] = 1 + 0.1 * randn(c)
        self.inits[names[1]] = 0.1 * randn(c)
        self.inits[names[2]] = 0.1 * randn(c)
        self.inits[names[3]] = (0.5 + rng.random(c)).astype(np.float32)
        return self.node("BatchNormalization", [x, *names])

    def cat(self, xs, axis=1):
        return self.node("Concat", list(xs), axis=axis)

    def model(self, inputs, outputs):
        g = helper.make_graph(
            self.nodes, "g",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(v.shape)) for n, v in inputs.items()],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
            [numpy_helper.from_array(v, n) for n, v in self.inits.items()])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def outputs_of(d):
    k, res = 0, []
    while True:
        pb, npy = os.path.join(d, f"output_{k}.pb"), os.path.join(d, f"output_{k}.npy")
        if os.path.exists(pb):
            res.append(numpy_helper.to_array(onnx.load_tensor(pb)))
        elif os.path.exists(npy):
            res.append(np.load(npy))
        else:
            return res
        k += 1


class Checker:
    """Cases of suite T (rmtest.Suite) on the remodel and spatial_plan binaries, working in
    the folder work."""

    def __init__(self, T, remodel, spatial_plan, work):
        self.T, self.remodel, self.spatial_plan, self.work = T, remodel, spatial_plan, work

    def check(self, name, net, inputs, outputs, in_place=None):
        """A case: remodel's outputs, fused, unfused and with direct convolutions only,
        equal onnxruntime's. in_place: whether every Concat step of the fused plan must
        execute nothing (True) or must copy (False), or a function checking the plan's
        steps (the list spatial_plan prints)."""
        @self.T.case(name)
        def _():
            self._run(name, net, inputs, outputs, in_place)

    def _run(self, name, net, inputs, outputs, in_place):
        d = os.path.join(self.work, name.replace(" ", "_"))
        os.makedirs(d)
        path = os.path.join(d, "model.onnx")
        onnx.save(net.model(inputs, outputs), path)
        args = []
        for n, v in inputs.items():
            np.save(os.path.join(d, n + ".npy"), v)
            args.append(f"{n}={os.path.join(d, n + '.npy')}")
        p = subprocess.run(["node", ORT_RUN, path, os.path.join(d, "ort"), *args], capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, f"onnxruntime: {p.stderr.strip()}"
        want = outputs_of(os.path.join(d, "ort"))
        assert len(want) == len(outputs), f"onnxruntime gave {len(want)} outputs"
        for flags in ([], ["--no-fuse"], ["--direct-conv"]):
            out = os.path.join(d, "remodel" + "".join(flags))
            rc, _, err = self.T.run(self.remodel, "run", path, *[a for x in args for a in ("-i", x)], "-o", out, *flags,
                               timeout=300)
            assert rc == 0, f"remodel run {' '.join(flags)}: exit {rc}: {err.strip()}"
            got = outputs_of(out)
            assert len(got) == len(want), f"{len(got)} outputs, onnxruntime has {len(want)}"
            for k, (a, b) in enumerate(zip(got, want)):
                assert a.shape == b.shape, f"output {k} {flags}: shape {a.shape}, expected {b.shape}"
                e = float(np.abs(a - b).max()) / max(float(np.abs(b).max()), 1e-30)
                assert e <= TOL, f"output {k} {' '.join(flags)}: differs by {e:.3g} of its scale from onnxruntime"
        if in_place is None:
            return
        p = subprocess.run([self.spatial_plan, path, *args], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"spatial_plan: {p.stderr.strip()}"
        steps = json.loads(p.stdout)["steps"]
        if callable(in_place):
            in_place(steps)
            return
        steps = [s for s in steps if s["op"] == "Concat"]
        assert steps, "no Concat step"
        for s in steps:
            assert (s["execs"] == 0 and s["onednn"]) == in_place, \
                f"Concat '{s['node']}' {'copies' if in_place else 'is in place'}, expected the other"


