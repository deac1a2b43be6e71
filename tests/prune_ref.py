"""Shared by the prune tests that check remodel against PyTorch (test_prune_roles.py,
test_conv1d.py): prune a small exported module with remodel, read which channels it kept from
the written model's remodel.channel_map metadata, slice the PyTorch module the same way, and
compare onnxruntime on the pruned file with PyTorch on the sliced module, to 1e-4 of the
output's scale; the pruned file must also pass onnx's checker with full shape inference.

    h = Harness(remodel_path, "rm_conv1d_", only=os.environ.get("RM_CONV1D_ONLY"))
    @h.case("what it checks")
    def _(): ...
    h.finish()   # prints the summary and exits 1 when a case failed
"""

import copy
import os
import shutil
import subprocess
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn

from rmtest import Suite

ORT_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort", "ort_run.js")
TOL = 1e-4


def randomise(m, seed):
    """Seeded weights, and BatchNorm statistics far from the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for b in m.modules():
            if isinstance(b, nn.modules.batchnorm._BatchNorm):
                b.running_mean.copy_(torch.randn(b.running_mean.shape, generator=g) * 0.2)
                b.running_var.copy_(torch.rand(b.running_var.shape, generator=g) + 0.5)
    return m.eval()


def conv_output(model, module):
    """The output tensor of the Conv/ConvTranspose node of module path `module`."""
    for n in model.graph.node:
        if n.op_type in ("Conv", "ConvTranspose") and n.name.split("/")[1:2] == [module]:
            return n.output[0]
    raise AssertionError(f"no conv node for {module}")


def kept(pruned_path, tensor, whole=None):
    """The channels of tensor the prune kept; a tensor left whole has no map (whole: its count)."""
    md = {p.key: p.value for p in onnx.load(pruned_path).metadata_props}
    key = "remodel.channel_map/" + tensor
    if whole is not None and key not in md:
        return list(range(whole))
    assert key in md, f"no {key} in the pruned model's metadata ({sorted(md)})"
    return [int(c) for c in md[key].split(",")]


def close(a, b, what):
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    scale = float(np.max(np.abs(b))) or 1.0
    err = float(np.max(np.abs(a - b)))
    assert err <= TOL * scale, f"{what}: max |diff| {err:.3g} > {TOL} x {scale:.3g}"


def sl(t, keep, axis):
    """t's entries `keep` along axis, as a new Parameter or tensor like t."""
    idx = torch.tensor(keep, dtype=torch.long)
    v = t.detach().index_select(axis, idx).clone()
    return nn.Parameter(v) if isinstance(t, nn.Parameter) else v


def sl_out(conv, k):
    conv.weight = sl(conv.weight, k, 0)
    if conv.bias is not None:
        conv.bias = sl(conv.bias, k, 0)
    conv.out_channels = len(k)


def sl_in(conv, k):
    conv.weight = sl(conv.weight, k, 1)
    conv.in_channels = len(k)


def sl_bn(bn, k):
    bn.weight = sl(bn.weight, k, 0)
    bn.bias = sl(bn.bias, k, 0)
    bn.running_mean = sl(bn.running_mean, k, 0)
    bn.running_var = sl(bn.running_var, k, 0)


def sl_dw(conv, k):
    sl_out(conv, k)
    conv.in_channels = conv.groups = len(k)


def run_ref(m, slice_fn, keep, shape):
    """A seeded input of shape, and a copy of m sliced by slice_fn(copy, keep) run on it."""
    ref = copy.deepcopy(m)
    with torch.no_grad():
        slice_fn(ref, keep)
        x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
        return x, ref(torch.from_numpy(x)).numpy()


class Harness(Suite):
    def __init__(self, remodel, prefix, only=None):
        super().__init__()
        self.remodel_path = remodel
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.only = only  # run only the cases whose name contains it

    def remodel(self, *args):
        # the edit history's time is fixed, so that two runs of one edit write the same bytes
        env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
        p = subprocess.run([self.remodel_path, *args], capture_output=True, text=True, timeout=300, env=env)
        return p.returncode, p.stdout, p.stderr

    def ort(self, path, x):
        """onnxruntime's output 0 of the model at path on input x (named x)."""
        d = tempfile.mkdtemp(dir=self.work)
        np.save(os.path.join(d, "x.npy"), x)
        p = subprocess.run(["node", ORT_RUN, path, d, "x=" + os.path.join(d, "x.npy")], capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, f"onnxruntime: {p.stderr.strip()}"
        return np.load(os.path.join(d, "output_0.npy"))

    def pruned(self, path, args):
        """remodel prune path ARGS -o <path>-pruned.onnx, which onnx's full check accepts."""
        out = path[:-5] + "-pruned.onnx"
        rc, so, err = self.remodel("prune", path, *args, "-o", out)
        assert rc == 0, f"prune: exit {rc}: {err.strip()}"
        onnx.checker.check_model(onnx.load(out), full_check=True)
        return out, so

    def prune_and_compare(self, path, m, module, slice_fn, shape, ratio="0.5", expect_kept=None, extra=()):
        """Prune `module` of the model at path by ratio; compare onnxruntime on the result with
        PyTorch's m pruned by slice_fn(copy, keep). Returns the kept channels and remodel's
        stdout."""
        out, so = self.pruned(path, [module, "--ratio", ratio, *extra])
        keep = kept(out, conv_output(onnx.load(path), module))
        assert 0 < len(keep) < m.get_submodule(module).out_channels and keep == sorted(set(keep)), f"kept {keep}"
        if expect_kept is not None:
            assert keep == expect_kept, f"kept {keep}, expected {expect_kept}"
        x, want = run_ref(m, slice_fn, keep, shape)
        close(self.ort(out, x), want, "onnxruntime on the pruned model vs the PyTorch module pruned alike")
        return keep, so

    def finish(self, keep_work=False):
        if keep_work:
            print(f"models kept in {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        super().finish()
