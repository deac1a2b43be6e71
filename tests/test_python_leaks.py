#!/usr/bin/env python3
"""Every path of the Python binding that allocates in libremodel, failures included, then
everything closed or dropped: run by tests/test_python.py under LeakSanitizer (a sanitizer
build), which must report no leak allocated inside the library. Lists only (no numpy), so
the interpreter's own leaks stay few and constant.

usage: test_python_leaks.py TESTDATA_DIR
"""
import gc
import os
import sys
import tempfile

sys.modules["numpy"] = None
import remodel  # noqa: E402

td = sys.argv[1]
path = os.path.join(td, "tiny_resnet.onnx")
with tempfile.TemporaryDirectory() as d:
    m = remodel.load(path)
    b = remodel.load_bytes(open(path, "rb").read())
    m.info()
    m.check()
    m.modules()
    m.show()
    m.show("layer1", depth=0)
    failing = [lambda: m.module("nope"),
               lambda: m.replace("layer1.0.conv1", "Conv2d(8, 8, kernel=3)"),
               lambda: m.replace("layer1.0.conv1", "Conv2d(8, 5, 3, padding=1)"),
               lambda: m.prune("fc", ratio=0.5),
               lambda: m.prune([], ratio=0.5, global_=False),
               lambda: remodel.load(os.path.join(d, "missing.onnx")),
               lambda: remodel.load_bytes(b"PK\x03\x04" + bytes(64)),
               lambda: m.run({"input": [[1.0]]}),
               lambda: m.save(os.path.join(d, "no", "m.onnx")),
               lambda: remodel.diff(m, b, report=path)]
    for bad in failing:
        try:
            bad()
        except remodel.Error:
            pass
        else:
            raise AssertionError("no remodel.Error")
    o = m.clone()
    m.replace("layer1.0.conv1", "Conv2d(8, 5, 3, padding=1)", propagate=True)
    m.prune(ratio=0.3)
    m.fold_bn()
    out = m.run(seed=1)
    with m.session(fuse=False) as s:
        s.run(seed=2)
        s.get(next(iter(out)))
    remodel.diff(o, m, layers=True, report=os.path.join(d, "r.html"))
    m.save(os.path.join(d, "m.onnx"), external_data="m.bin")
    kept = b.session()  # closed with its model
    b.close()
    o.close()
    dropped = remodel.load(path)  # freed by the garbage collector
    dropped.session()
    m = o = b = kept = dropped = None  # the last references go
    gc.collect()
print("done")
