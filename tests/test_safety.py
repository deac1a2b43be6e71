#!/usr/bin/env python3
"""Hostile file systems and inputs against the remodel command line (issue 14): FIFOs,
devices and links where files belong, outputs that name the files being read, signals
during a save, memory limits, names that are not UTF-8. Every case states what must
hold: exit 2 and one line on stderr for bad input, never a hang, never a damaged file.
Standard library plus the onnx package (python3-onnx) to build models.

usage: test_safety.py REMODEL TESTDATA_DIR
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

REMODEL, TESTDATA = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])

from rmtest import Suite, one_error_line, varint  # noqa: E402

T = Suite()
case = T.case


def run(*args, cwd=None, timeout=60, preexec_fn=None):
    """Run remodel; a hang past timeout fails the case (the child is killed)."""
    return T.run(REMODEL, *args, timeout=timeout, cwd=cwd, preexec_fn=preexec_fn, errors="replace")

def model(name):
    return os.path.join(TESTDATA, name + ".onnx")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def external_copy(src, dst, location):
    """src saved by the onnx package as dst with every tensor in `location` beside it."""
    import onnx
    onnx.save_model(onnx.load(src), dst, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)


# ---- inputs that are not regular files: refused at once, never waited on ----------------

@case("a FIFO as the model, as external data (also behind a link out of the folder), as -i: exit 2, no hang")
def _():
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "fifo.onnx")
        os.mkfifo(fifo)
        for cmd in ("info", "check", "show", "run"):
            one_error_line(*run(cmd, fifo, timeout=20), "fifo.onnx", "not a regular file", "FIFO")

        sub = os.path.join(d, "m")
        os.makedirs(sub)
        ext = os.path.join(sub, "m.onnx")
        external_copy(model("tiny_resnet"), ext, "w.bin")
        os.unlink(os.path.join(sub, "w.bin"))
        os.mkfifo(os.path.join(sub, "w.bin"))
        one_error_line(*run("info", ext, timeout=20), "m.onnx", "w.bin", "not a regular file")

        # a link out of the model's folder is refused before it is opened
        os.unlink(os.path.join(sub, "w.bin"))
        os.symlink(fifo, os.path.join(sub, "w.bin"))
        one_error_line(*run("info", ext, timeout=20), "m.onnx", "outside the model's folder")

        one_error_line(*run("run", model("tiny_resnet"), "-i", f"input={fifo}", timeout=20),
                       "fifo.onnx", "not a regular file")
        one_error_line(*run("diff", model("tiny_resnet"), model("tiny_resnet"), "-i", f"input={fifo}",
                            timeout=20), "fifo.onnx", "not a regular file")


# ---- outputs onto special files: refused, the special file left as it was -------------

def special_targets(d):
    """Paths in d that are not regular files, with a description and a check that each is
    still what it was: a FIFO, a character device (a copy of /dev/null, where mknod is
    allowed), a link to /proc/self/fd/1, a dangling link, a folder."""
    out = []
    fifo = os.path.join(d, "fifo.out")
    os.mkfifo(fifo)
    out.append((fifo, "FIFO", lambda p=fifo: stat.S_ISFIFO(os.lstat(p).st_mode)))
    dev = os.path.join(d, "null.out")
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        out.append((dev, "character device", lambda p=dev: stat.S_ISCHR(os.lstat(p).st_mode)))
    except OSError:
        print("     (mknod not permitted here: the character-device case is skipped)")
    link = os.path.join(d, "stdout.out")
    os.symlink("/proc/self/fd/1", link)
    out.append((link, "symbolic link", lambda p=link: os.readlink(p) == "/proc/self/fd/1"))
    dangling = os.path.join(d, "dangling.out")
    os.symlink(os.path.join(d, "nowhere", "x"), dangling)
    out.append((dangling, "missing file", lambda p=dangling: os.path.islink(p)))
    sub = os.path.join(d, "folder.out")
    os.makedirs(sub)
    out.append((sub, "directory", lambda p=sub: os.path.isdir(p) and not os.listdir(p)))
    return out


@case("-o, --external-data, --report and run -o onto a FIFO, a device or a link to one: exit 2, left as it was")
def _():
    with tempfile.TemporaryDirectory() as d:
        src = model("tiny_resnet")
        for target, what, intact in special_targets(d):
            name = os.path.basename(target)
            for args in (["save", src, "-o", target],
                         ["prune", src, "layer1.0.conv1", "--ratio", "0.5", "-o", target],
                         ["fold-bn", src, "-o", target, "--no-verify"],
                         ["save", src, "-o", os.path.join(d, "ok.onnx"), "--external-data", name],
                         ["diff", src, src, "--report", target]):
                rc, out, err = run(*args, timeout=30)
                one_error_line(rc, out, err, name, what)
                assert intact(), f"{' '.join(args)}: {target} was replaced"
                assert not os.path.exists(os.path.join(d, "ok.onnx")), f"{' '.join(args)}: wrote the model"
        # run -o DIR writes DIR/output_0.pb: a FIFO there stays a FIFO
        outdir = os.path.join(d, "outdir")
        os.makedirs(outdir)
        os.mkfifo(os.path.join(outdir, "output_0.pb"))
        one_error_line(*run("run", src, "-o", outdir, timeout=30), "output_0.pb", "FIFO")
        assert stat.S_ISFIFO(os.lstat(os.path.join(outdir, "output_0.pb")).st_mode)
        # only what remodel made is left: no temporary files
        leftovers = [n for n in os.listdir(d) if n.startswith(".")] + \
                    [n for n in os.listdir(outdir) if n.startswith(".")]
        assert not leftovers, leftovers


@case("-o onto a link to a regular file replaces the link; the file it points to is untouched")
def _():
    with tempfile.TemporaryDirectory() as d:
        real = os.path.join(d, "real.onnx")
        shutil.copy(model("se_net"), real)
        before = read(real)
        link = os.path.join(d, "link.onnx")
        os.symlink("real.onnx", link)
        rc, _, err = run("save", model("tiny_resnet"), "-o", link)
        assert rc == 0, err
        assert not os.path.islink(link) and read(link) == read(model("tiny_resnet"))
        assert read(real) == before


# ---- outputs naming a file a loaded model reads from -----------------------------------

def weights(path):
    """name -> numpy array of every initializer, read by the onnx package."""
    import onnx
    from onnx import numpy_helper
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def same_weights(a, b):
    assert a.keys() == b.keys()
    bad = [k for k in a if a[k].shape != b[k].shape or not (a[k] == b[k]).all()]
    assert not bad, f"{len(bad)} of {len(a)} weights differ: {bad[:3]}"


@case("never rewrite the external data a loaded model reads: save/prune --external-data onto it exit 2")
def _():
    with tempfile.TemporaryDirectory() as d:
        a = os.path.join(d, "a.onnx")
        external_copy(model("tiny_resnet"), a, "w.bin")
        data, ref = read(os.path.join(d, "w.bin")), weights(model("tiny_resnet"))
        same_weights(weights(a), ref)
        for args in (["save", "a.onnx", "-o", "b.onnx", "--external-data", "w.bin"],
                     ["prune", "a.onnx", "layer1.0.conv1", "--ratio", "0.5", "-o", "a.onnx", "--external-data", "w.bin"],
                     ["fold-bn", "a.onnx", "-o", "c.onnx", "--external-data", "w.bin"],
                     ["save", "a.onnx", "-o", "w.bin"]):
            one_error_line(*run(*args, cwd=d), "w.bin", "a.onnx", "choose another name")
            assert read(os.path.join(d, "w.bin")) == data, f"{' '.join(args)}: w.bin rewritten"
            same_weights(weights(a), ref)
            assert sorted(os.listdir(d)) == ["a.onnx", "w.bin"], os.listdir(d)
        # what is allowed: a new data file, and replacing the model file itself inline
        rc, _, err = run("save", "a.onnx", "-o", "b.onnx", "--external-data", "w2.bin", cwd=d)
        assert rc == 0, err
        same_weights(weights(os.path.join(d, "b.onnx")), ref)
        rc, _, err = run("save", "a.onnx", "-o", "a.onnx", cwd=d)
        assert rc == 0, err
        same_weights(weights(a), ref)


@case("outputs are compared with the files being read by identity, not by spelling (-o, --external-data, --report, run -o)")
def _():
    with tempfile.TemporaryDirectory() as d:
        a = os.path.join(d, "a.onnx")
        shutil.copy(model("tiny_resnet"), a)
        e = os.path.join(d, "e.onnx")
        external_copy(model("tiny_resnet"), e, "output_0.pb")  # weights in a file run -o would write
        os.link(os.path.join(d, "output_0.pb"), os.path.join(d, "hard.bin"))
        os.symlink(d, os.path.join(d, "here"))
        originals = {n: read(os.path.join(d, n)) for n in ("a.onnx", "e.onnx", "output_0.pb")}

        def intact():
            for n, b in originals.items():
                assert read(os.path.join(d, n)) == b, f"{n} changed"
            assert sorted(os.listdir(d)) == ["a.onnx", "e.onnx", "hard.bin", "here", "output_0.pb"], os.listdir(d)

        # the input model by another spelling, as external data or a report
        one_error_line(*run("save", "a.onnx", "-o", "c.onnx", "--external-data", "a.onnx", cwd=d),
                       "a.onnx", "model being read")
        one_error_line(*run("diff", "a.onnx", "e.onnx", "--report", "./a.onnx", cwd=d), "a.onnx", "--report")
        one_error_line(*run("diff", "a.onnx", "e.onnx", "--report", "here/e.onnx", cwd=d), "e.onnx", "--report")
        # external data by another name (a hard link) or through a linked folder
        one_error_line(*run("diff", "a.onnx", "e.onnx", "--report", "hard.bin", cwd=d), "hard.bin", "e.onnx")
        one_error_line(*run("save", "e.onnx", "-o", "c.onnx", "--external-data", "hard.bin", cwd=d),
                       "hard.bin", "e.onnx")
        one_error_line(*run("save", "e.onnx", "-o", "here/output_0.pb", cwd=d), "output_0.pb", "e.onnx")
        # run -o DIR: output_0.pb is the model itself, or the data it reads
        one_error_line(*run("run", "e.onnx", "-o", ".", cwd=d), "output_0.pb", "e.onnx")
        sub = os.path.join(d, "s")
        os.makedirs(sub)
        shutil.copy(a, os.path.join(sub, "output_0.pb"))
        one_error_line(*run("run", "s/output_0.pb", "-o", "here/s", cwd=d), "output_0.pb", "model being read")
        assert read(os.path.join(sub, "output_0.pb")) == originals["a.onnx"]
        shutil.rmtree(sub)
        # the data file named like the output
        one_error_line(*run("save", "a.onnx", "-o", "b.onnx", "--external-data", "b.onnx", cwd=d),
                       "b.onnx", "same file as -o")
        intact()


# ---- every output path is checked before any work starts (issue 18) -------------------

@case("a missing output folder fails before any work, naming the folder")
def _():
    with tempfile.TemporaryDirectory() as d:
        src = model("tiny_resnet")
        for args in (["replace", src, "layer1.0.conv1", "Conv2d(8, 8, 3, padding=1, bias=False)", "-o", "out/r.onnx"],
                     ["prune", src, "layer1.0.conv1", "--ratio", "0.5", "-o", "out/r.onnx"],
                     ["fold-bn", src, "-o", "out/r.onnx"],
                     ["save", src, "-o", "out/r.onnx"],
                     ["save", src, "-o", "r.onnx", "--external-data", "w.bin/x"],
                     ["run", src, "-o", "out/tensors"],
                     ["diff", src, src, "--report", "out/r.html"]):
            rc, out, err = run(*args, cwd=d)
            assert out == "", f"{' '.join(args)}: work was done before the output was checked: {out!r}"
            if args[-1] == "w.bin/x":
                one_error_line(rc, out, err, "plain file name")
            else:
                one_error_line(rc, out, err, "the folder 'out' does not exist", "mkdir -p out")
        # a file where the folder should be; -o naming a folder; the input as a folder
        shutil.copy(src, os.path.join(d, "a.onnx"))
        one_error_line(*run("prune", "a.onnx", "conv1", "--ratio", "0.5", "-o", "a.onnx/x.onnx", cwd=d),
                       "'a.onnx' is not a folder")
        one_error_line(*run("fold-bn", "a.onnx", "-o", ".", cwd=d), "names a folder")
        one_error_line(*run("run", "a.onnx", "-o", "a.onnx", cwd=d), "a.onnx", "not a folder")
        assert sorted(os.listdir(d)) == ["a.onnx"], os.listdir(d)
        if os.geteuid() != 0:  # root writes anywhere
            ro = os.path.join(d, "ro")
            os.makedirs(ro, 0o555)
            one_error_line(*run("fold-bn", "a.onnx", "-o", "ro/x.onnx", cwd=d), "cannot create a file in the folder 'ro'")


@case("output names up to NAME_MAX (255 bytes) are written; longer ones are refused in one line")
def _():
    with tempfile.TemporaryDirectory() as d:
        src = model("se_net")
        for n in (244, 250, 255):
            name = "m" * (n - 5) + ".onnx"
            rc, _, err = run("save", src, "-o", name, cwd=d)
            assert rc == 0, f"{n} bytes: {err}"
            assert read(os.path.join(d, name)) == read(src)
            rc, _, err = run("save", src, "-o", "x.onnx", "--external-data", name[:-4] + "bin", cwd=d)
            assert rc == 0, f"{n} bytes, --external-data: {err}"
            rc, _, err = run("diff", src, src, "--report", name[:-4] + "html", cwd=d)
            assert rc == 0, f"{n} bytes, --report: {err}"
        one_error_line(*run("save", src, "-o", "m" * 256, cwd=d), "file name too long")
        assert not [f for f in os.listdir(d) if f.startswith(".")], os.listdir(d)


# ---- signals, file-size limits, temporary files ----------------------------------------

def temporaries(d):
    return [n for n in os.listdir(d) if n.startswith(".rm-") or ".tmp-" in n]


def default_signals():
    """A shell running us in the background ignores SIGINT; remodel keeps what it inherits."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@case("a save killed by SIGTERM, SIGINT or SIGHUP leaves no temporary file")
def _():
    with tempfile.TemporaryDirectory() as d:
        src, out = model("resnet18"), os.path.join(d, "out.onnx")
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            hit = False
            for _attempt in range(20):
                if os.path.exists(out):
                    os.unlink(out)
                p = subprocess.Popen([REMODEL, "save", src, "-o", out], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=default_signals)
                while p.poll() is None and not temporaries(d):
                    pass
                if p.poll() is None:
                    p.send_signal(sig)
                    hit = True
                rc = p.wait(timeout=60)
                left = temporaries(d)
                assert not left, f"{sig.name}: temporary files left: {left}"
                if hit:
                    assert rc == -sig, f"{sig.name}: exit {rc}, expected death by the signal"
                    assert not os.path.exists(out) or read(out) == read(src), "a partial output"
                    break
            assert hit, f"{sig.name}: never caught the save while it was writing"


@case("past a file-size limit (ulimit -f) a save exits 2 in one line and leaves nothing")
def _():
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))

    with tempfile.TemporaryDirectory() as d:
        for args in (["save", model("resnet18"), "-o", "out.onnx"],
                     ["save", model("resnet18"), "-o", "out.onnx", "--external-data", "w.bin"]):
            one_error_line(*run(*args, cwd=d, preexec_fn=limit), "cannot write", "too large")
            assert os.listdir(d) == [], os.listdir(d)


@case("stale temporary files are mentioned on stderr, never deleted; a live one is not mentioned")
def _():
    import fcntl
    with tempfile.TemporaryDirectory() as d:
        stale = [".rm-Ab12Cd.tmp", ".out.onnx.tmp-Xy34Zw"]
        others = [".rm-notours.tmp", ".rm-live01.tmp", "keep.tmp"]
        for n in stale + others:
            with open(os.path.join(d, n), "wb") as f:
                f.write(b"x" * 1000)
        live = open(os.path.join(d, ".rm-live01.tmp"), "rb")
        fcntl.flock(live, fcntl.LOCK_EX)  # as a remodel writing it would
        try:
            rc, _, err = run("save", model("se_net"), "-o", os.path.join(d, "out.onnx"))
        finally:
            live.close()
        assert rc == 0, err
        lines = err.strip().splitlines()
        assert len(lines) == 2 and all("note:" in x for x in lines), lines
        for n in stale:
            assert any(n in x for x in lines), (n, lines)
        assert not any("live01" in x or "notours" in x or "keep" in x for x in lines), lines
        assert sorted(os.listdir(d)) == sorted(stale + others + ["out.onnx"]), os.listdir(d)


@case("a replaced file keeps its mode (and its owner, as root)")
def _():
    with tempfile.TemporaryDirectory() as d:
        a = os.path.join(d, "a.onnx")
        shutil.copy(model("tiny_resnet"), a)
        for mode in (0o600, 0o640, 0o444):
            os.chmod(a, mode)
            rc, _, err = run("prune", a, "layer1.0.conv1", "--ratio", "0.25", "-o", a)
            assert rc == 0, err
            got = stat.S_IMODE(os.stat(a).st_mode)
            assert got == mode, f"mode {oct(mode)} became {oct(got)}"
        os.chmod(a, 0o600)
        if os.geteuid() == 0:
            os.chown(a, 12345, 23456)
            rc, _, err = run("fold-bn", a, "-o", a)
            assert rc == 0, err
            st = os.stat(a)
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (12345, 23456, 0o600), \
                (st.st_uid, st.st_gid, oct(st.st_mode))
        # a new file gets what a plain create gives: 0666 less the umask
        new = os.path.join(d, "new.onnx")
        rc, _, err = run("save", a, "-o", new, preexec_fn=lambda: os.umask(0o027))
        assert rc == 0, err
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o640, oct(os.stat(new).st_mode)


# ---- --json is valid UTF-8 whatever bytes the model's names hold -----------------------

# byte-for-byte replacements (same lengths, so every length prefix stays right) applied to
# every name: an overlong and a surrogate, a lone 0xff and a control character, a code point
# past U+10FFFF, and a well-formed two-byte character that must come through unchanged
PATCHES = [(b"pytorch", b"py\xc0\x80\xed\xa0\x80"), (b"layer1", b"l\xffy\x1fr1"),
           (b"output", b"out\xf4\x90\x80"), (b"conv1", b"c\xc3\xa9v1")]


def patched(text):
    """What text reads as in the patched model: its bytes patched, then decoded the way Unicode
    recommends (Python's errors='replace': one U+FFFD per maximal ill-formed subpart)."""
    b = text.encode()
    for old, new in PATCHES:
        b = b.replace(old, new)
    return b.decode("utf-8", "replace")


def json_doc(*args):
    p = subprocess.run([REMODEL, *args], capture_output=True, timeout=120)
    assert p.returncode in (0, 1), f"{' '.join(args)}: exit {p.returncode}: {p.stderr!r}"
    p.stdout.decode("utf-8")  # strict: json.loads on bytes lets encoded surrogates through
    return json.loads(p.stdout)


def all_strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, list):
        for x in v:
            yield from all_strings(x)
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from all_strings(x)


@case("--json is valid UTF-8 for names that are not (info, show, run, diff --layers)")
def _():
    with tempfile.TemporaryDirectory() as d:
        data = read(model("tiny_resnet"))
        for old, new in PATCHES:
            assert len(old) == len(new) and data.count(old) > 0
            data = data.replace(old, new)
        bad = os.path.join(d, "bad.onnx")
        with open(bad, "wb") as f:
            f.write(data)
        rc, out, err = run("check", bad)
        assert rc == 0, out + err

        info = json_doc("info", "--json", bad)
        assert info["producer_name"] == patched("pytorch") == "py\ufffd\ufffd\ufffd\ufffd\ufffd", info["producer_name"]
        assert info["outputs"][0]["name"] == patched("output"), info["outputs"]
        show = json_doc("show", "--json", bad)
        paths = []

        def walk(mod):
            paths.append(mod["path"])
            for c in mod["children"]:
                walk(c)
        walk(show["module"])
        assert patched("layer1.0.conv1") in paths, paths
        assert patched("layer1.0.conv1") == "l\ufffdy\x1fr1.0.c\u00e9v1"
        nodes = list(all_strings(show))
        assert patched("/layer1/layer1.0/conv1/Conv") in nodes
        run_doc = json_doc("run", "--json", bad)
        assert run_doc["outputs"][0]["name"] == patched("output"), run_doc["outputs"]
        diff = json_doc("diff", "--layers", "--json", bad, bad)
        assert diff["outputs"][0]["name"] == patched("output")
        assert patched("layer1.0.conv1") in [x["path"] for x in diff["layers"]]


# ---- memory limits ------------------------------------------------------------------------

@case("out of memory while loading says so (with the size wanted), not 'not a valid ModelProto'")
def _():
    import re
    import resource

    def limit(kb):
        return lambda: resource.setrlimit(resource.RLIMIT_AS, (kb << 10, resource.RLIM_INFINITY))

    rc, _, _ = run("--version", preexec_fn=limit(100000))
    if rc != 0:  # a sanitizer build reserves terabytes of address space: it cannot start
        print("     (remodel cannot start under a 100 MB address-space limit here: skipped)")
        return
    size_mb = os.path.getsize(model("resnet18")) / (1 << 20)
    seen = 0
    for kb in (60000, 80000, 100000, 120000):
        for cmd in ("info", "check", "show"):
            rc, out, err = run(cmd, model("resnet18"), preexec_fn=limit(kb))
            if rc == 0:
                continue
            one_error_line(rc, out, err, "resnet18.onnx", "out of memory (")
            wanted = int(re.search(r"out of memory \((\d+) MB wanted\)", err).group(1))
            assert wanted >= size_mb - 1, f"{wanted} MB wanted for a {size_mb:.1f} MB file"
            seen += 1
    assert seen, "no limit made the load fail"


@case("external data larger than RAM + swap loads (mapped read-only, shared); edits copy what they change")
def _():
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    kb = lambda k: int(meminfo.get(k, "0 kB").split()[0])
    big = (kb("MemTotal") + kb("SwapTotal")) * 1024 + (1 << 30)
    with tempfile.TemporaryDirectory() as d:
        a = os.path.join(d, "a.onnx")
        external_copy(model("tiny_resnet"), a, "w.bin")
        w = os.path.join(d, "w.bin")
        data = read(w)
        os.truncate(w, big)  # sparse: the tensors, then a hole as large as the machine's memory and more
        for args in (["info", a], ["check", a], ["run", a]):
            rc, out, err = run(*args)
            assert rc == 0, f"{' '.join(args)}: {err}"
        for args in (["prune", a, "layer1.0.conv1", "--ratio", "0.5"], ["fold-bn", a],
                     ["replace", a, "conv1", "Conv2d(3, 8, 5, padding=2, bias=False)", "--propagate"]):
            out = os.path.join(d, "out.onnx")
            rc, _, err = run(*args, "-o", out)
            assert rc == 0, f"{' '.join(args)}: {err}"
            rc, _, err = run("check", out)
            assert rc == 0, err
        with open(w, "rb") as f:  # nothing wrote through the mapping
            assert f.read(len(data)) == data
        same_weights(weights(a), weights(model("tiny_resnet")))


# ---- option values ------------------------------------------------------------------------

@case("--seed takes 0 .. 2^64-1 exactly: larger values and signs are refused, not clamped")
def _():
    src = model("tiny_resnet")
    for bad in ("18446744073709551616", "99999999999999999999999", "-1", "+5", " 5", "1e3"):
        for args in (["run", src, "--seed", bad], ["diff", src, src, "--seed", bad],
                     ["fold-bn", src, "-o", "/nonexistent-never/x.onnx", "--seed", bad]):
            one_error_line(*run(*args), "--seed", "18446744073709551615")
    firsts = {}
    for seed in ("9223372036854775807", "18446744073709551615", "0"):
        rc, out, err = run("run", src, "--json", "--seed", seed)
        assert rc == 0, err
        firsts[seed] = json.loads(out)["outputs"][0]["first"]
    # each seed its own input (a clamp made the two largest the same)
    assert len({tuple(v) for v in firsts.values()}) == 3, firsts
    rc, out, err = run("diff", src, src, "--seed", "18446744073709551615")
    assert rc == 0 and "seed 18446744073709551615" in out, out + err


# ---- errors that teach: what a file that is not a model is (issue 18) -------------------

@case("a file that is not an ONNX model is named for what it is, with the fix, in one line")
def _():
    import onnx
    import pickle
    import zipfile
    with tempfile.TemporaryDirectory() as d:
        def put(name, data):
            p = os.path.join(d, name)
            with open(p, "wb") as f:
                f.write(data)
            return p

        ck = os.path.join(d, "ck.pt")
        try:
            import torch
            torch.save({"weight": torch.zeros(3)}, ck)
        except ImportError:  # what torch.save writes: a zip whose first member is <stem>/data.pkl
            with zipfile.ZipFile(ck, "w") as z:
                z.writestr("ck/data.pkl", pickle.dumps({"weight": [0.0] * 3}, protocol=2))
                z.writestr("ck/version", "3\n")
        old = put("old.pt", pickle.dumps({"weight": [0.0] * 3}, protocol=2))  # torch.save before 1.6
        zipped = os.path.join(d, "model.zip")
        with zipfile.ZipFile(zipped, "w") as z:
            z.write(model("tiny_resnet"), "tiny_resnet.onnx")
        text = put("model.onnx.txt", "ir_version: 7\ngraph { name: \"g\" }\n# é\n".encode())
        sm = os.path.join(d, "saved")
        os.makedirs(os.path.join(sm, "variables"))
        smpb = put(os.path.join("saved", "saved_model.pb"), b"\x08\x01\x12\x04\x0a\x02\x08\x01")
        empty = put("empty.onnx", b"")
        full = read(model("tiny_resnet"))
        half = put("half.onnx", full[: len(full) // 2])
        cut = put("cut.onnx", full[:3])
        # where onnx itself puts the graph: after ir_version, producer_name, producer_version
        m = onnx.load(model("tiny_resnet"))
        head = onnx.ModelProto(ir_version=m.ir_version, producer_name=m.producer_name,
                               producer_version=m.producer_version)
        start, g = head.ByteSize(), m.graph.ByteSize()
        end = start + 1 + len(varint(g)) + g

        for path, needles in ((ck, ["ck.pt", "zip archive", "PyTorch checkpoint", "torch.onnx.export"]),
                              (old, ["old.pt", "pickle", "torch.onnx.export"]),
                              (zipped, ["model.zip", "holding 'tiny_resnet.onnx'", "unzip"]),
                              (text, ["model.onnx.txt", "a text file", "binary protobuf"]),
                              (sm, ["saved", "TensorFlow SavedModel folder", "tf2onnx", f"--saved-model {sm} "]),
                              (smpb, ["saved_model.pb", "TensorFlow SavedModel", f"--saved-model {sm} "]),
                              (empty, ["empty.onnx", "empty file"]),
                              (half, ["half.onnx", f"truncated file: it ends at byte {len(full) // 2} of {end} expected",
                                      f"field 'graph' at byte {start}"]),
                              (cut, ["cut.onnx", "truncated file: it ends at byte 3 in the middle of field 'producer_name'"])):
            for cmd in ("info", "check", "show"):
                one_error_line(*run(cmd, path), *needles)


# ---- hostile models: what a protobuf parser lets through (issue 14) ---------------------

def sane(rc, out, err, what):
    """Any verdict but a crash: exit 0, 1 or 2, and exit 2 with one line on stderr."""
    assert "runtime error" not in err and "Sanitizer" not in err, f"{what}: {err}"
    assert rc in (0, 1, 2), f"{what}: exit {rc}: {err!r}"
    if rc == 2:
        assert len(err.strip().splitlines()) == 1, f"{what}: expected one stderr line: {err!r}"


def save_model(path, nodes, inits, inputs, outputs, opset=13, mutate=None):
    """A model from onnx.helper pieces; inputs/outputs as (name, dims) or (name, None)."""
    import onnx
    from onnx import helper
    F = onnx.TensorProto.FLOAT
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, F, d) for n, d in inputs],
                          [helper.make_tensor_value_info(n, F, d) for n, d in outputs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="hostile")
    m.ir_version = 7
    if mutate:
        mutate(m)
    with open(path, "wb") as f:
        f.write(m.SerializeToString())  # no checks on the way: these models are meant to be wrong
    return path


def tensor(name, a):
    from onnx import numpy_helper
    return numpy_helper.from_array(a, name)


def conv_bn_relu(d, name, w, **conv):
    """x [1, w.shape[1], 8, 8] -> Conv(w) -> BatchNormalization -> Relu -> GAP -> y: the
    shape of a torch export with BatchNorm kept."""
    import numpy as np
    from onnx import helper
    c = w.shape[0] if w.ndim else 4
    bn = [tensor(f"bn.{k}", np.full(c, v, np.float32)) for k, v in
          (("weight", 1.5), ("bias", 0.1), ("running_mean", 0.2), ("running_var", 2.0))]
    nodes = [helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="/conv/Conv", **conv),
             helper.make_node("BatchNormalization", ["c"] + [t.name for t in bn], ["b"], name="/bn/BatchNormalization"),
             helper.make_node("Relu", ["b"], ["r"], name="/relu/Relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["y"], name="/pool/GlobalAveragePool")]
    return save_model(os.path.join(d, name), nodes, [tensor("conv.weight", w)] + bn,
                      [("x", [1, w.shape[1] if w.ndim > 1 else 3, 8, 8])], [("y", [1, c, 1, 1])])


@case("fold-bn of a Conv whose weight has dims=[] exits 2 in one line (it read dims[0]: SIGSEGV)")
def _():
    import numpy as np
    with tempfile.TemporaryDirectory() as d:
        path = conv_bn_relu(d, "scalar_w.onnx", np.array(1.0, np.float32))
        out = os.path.join(d, "out.onnx")
        one_error_line(*run("fold-bn", path, "-o", out), "scalar_w.onnx", "Conv")
        assert not os.path.exists(out)
        for args in (["info", path], ["check", path], ["show", path], ["run", path],
                     ["prune", path, "conv", "--ratio", "0.5", "-o", out],
                     ["replace", path, "conv", "Conv2d(3, 4, 3)", "-o", out]):
            sane(*run(*args), " ".join(args[:1]))


@case("replace of a Conv whose data input is named '' exits 2 naming it (ASan: heap-buffer-overflow)")
def _():
    import numpy as np
    from onnx import helper
    with tempfile.TemporaryDirectory() as d:
        w = np.random.default_rng(0).standard_normal((4, 4, 3, 3)).astype(np.float32)
        nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="/first/Conv", pads=[1, 1, 1, 1]),
                 helper.make_node("Conv", ["", "w"], ["b"], name="/conv/Conv", pads=[1, 1, 1, 1]),
                 helper.make_node("Add", ["a", "b"], ["y"], name="/Add")]
        path = save_model(os.path.join(d, "no_input.onnx"), nodes, [tensor("w", w)], [("x", [1, 4, 8, 8])],
                          [("y", [1, 4, 8, 8])])
        out = os.path.join(d, "out.onnx")
        one_error_line(*run("replace", path, "conv", "Conv2d(4, 4, 3, padding=1)", "-o", out),
                       "no_input.onnx", "/conv/Conv", "input 0 (X) is required but given as ''")
        assert not os.path.exists(out)
        for args in (["info", path], ["show", path], ["run", path], ["fold-bn", path, "-o", out],
                     ["prune", path, "first", "--ratio", "0.5", "-o", out]):
            sane(*run(*args), args[0])


@case("a pool window of 10^6 x 10^6 taps over a 4x4 input finishes, folded as a constant and run, as onnxruntime computes it")
def _():
    # fuzzing: shape inference folds a pool over a constant by running its kernel, which
    # stepped through every tap of the window, inside the input or not (hours of work)
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    ort = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort", "ort_run.js")
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 4)).astype(np.float32)
    big = 10 ** 6
    win = dict(kernel_shape=[big, big], strides=[big, big], pads=[big - 1] * 4)
    pools = [("MaxPool", {}), ("AveragePool", {"count_include_pad": 0}), ("AveragePool", {"count_include_pad": 1})]
    with tempfile.TemporaryDirectory() as d:
        for i, (op, extra) in enumerate(pools):
            # the window over a constant (folded by `info`) and over the graph input (run)
            nodes = [helper.make_node(op, ["k"], ["folded"], name="/fold", **win, **extra),
                     helper.make_node(op, ["x"], ["y"], name="/pool", **win, **extra)]
            path = save_model(os.path.join(d, f"pool{i}.onnx"), nodes, [tensor("k", x)], [("x", list(x.shape))],
                              [("y", None), ("folded", None)])
            rc, out, err = run("info", path, timeout=30)
            assert rc == 0, f"{op} {extra}: info: exit {rc}: {err}"
            np.save(os.path.join(d, "x.npy"), x)
            rc, out, err = run("run", path, "-i", "x=" + os.path.join(d, "x.npy"), "-o", os.path.join(d, f"rm{i}"),
                               timeout=30)
            assert rc == 0, f"{op} {extra}: run: exit {rc}: {err}"
            p = subprocess.run(["node", ort, path, os.path.join(d, f"ort{i}"), "x=" + os.path.join(d, "x.npy")],
                               capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, f"onnxruntime: {p.stderr.strip()}"
            for k in range(2):
                got = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, f"rm{i}", f"output_{k}.pb")))
                want = np.load(os.path.join(d, f"ort{i}", f"output_{k}.npy"))
                assert got.shape == want.shape == (1, 2, 2, 2), f"{op} {extra} output {k}: {got.shape} {want.shape}"
                assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), f"{op} {extra} output {k}: {got} {want}"


@case("an empty name in a required or variadic input (Concat, Sum, Conv's X) is refused by every command that runs the model")
def _():
    import numpy as np
    from onnx import helper
    w = np.random.default_rng(1).standard_normal((4, 4, 1, 1)).astype(np.float32)
    graphs = {
        "concat": [helper.make_node("Concat", ["x", "", "x"], ["y"], name="/cat/Concat", axis=1)],
        "sum": [helper.make_node("Sum", ["x", ""], ["y"], name="/sum/Sum")],
        "max": [helper.make_node("Max", ["", "x"], ["y"], name="/max/Max")],
        "conv": [helper.make_node("Conv", ["", "w"], ["y"], name="/conv/Conv")],
    }
    with tempfile.TemporaryDirectory() as d:
        for name, nodes in graphs.items():
            yc = 8 if name == "concat" else 4
            path = save_model(os.path.join(d, name + ".onnx"), nodes, [tensor("w", w)] if name == "conv" else [],
                              [("x", [1, 4, 8, 8])], [("y", [1, yc, 8, 8])])
            for args in (["info", path], ["run", path], ["diff", path, path]):
                one_error_line(*run(*args), name + ".onnx", nodes[0].name, "is required but given as ''")


def initializer(name, dims, dtype=1):
    """A TensorProto with dims and no data (enough for shape inference; check reports it)."""
    import onnx
    t = onnx.TensorProto(name=name, data_type=dtype)
    t.dims.extend(dims)
    return t


BIG = 2**63 - 1


def hostile_sizes(d):
    """(file, command whose verdict is known, needle in its one line) for sizes past int64:
    each overflowed (UBSan: signed integer overflow) in shape inference, MACs or a kernel."""
    import numpy as np
    from onnx import helper
    w = tensor("w", np.ones((2, 2, 1, 1), np.float32))
    i64 = lambda name, v: tensor(name, np.array(v, np.int64))  # noqa: E731
    cases = [
        ("same_big", [helper.make_node("Conv", ["x", "w"], ["y"], name="/c/Conv", auto_pad="SAME_UPPER",
                                       strides=[3, 3])], [w], [1, 2, BIG, 4], None),
        ("pads_big", [helper.make_node("Conv", ["x", "w"], ["y"], name="/c/Conv", pads=[5, 5, 5, 5])], [w],
         [1, 2, BIG - 2, 4], "plus pads out of range"),
        ("ceil_big", [helper.make_node("MaxPool", ["x"], ["y"], name="/p/MaxPool", kernel_shape=[1, 1],
                                       ceil_mode=1, strides=[7, 7])], [], [1, 2, BIG, 4], None),
        ("concat_big", [helper.make_node("Concat", ["x", "x"], ["y"], name="/Concat", axis=2)], [],
         [1, 2, BIG // 2 + 5, 4], "add up past int64"),
        ("pad_big", [helper.make_node("Pad", ["x", "pads"], ["y"], name="/Pad")],
         [i64("pads", [0, 0, BIG, 0, 0, 0, BIG, 0])], [1, 2, 4, 4], "out of range"),
        ("pad_min_max", [helper.make_node("Pad", ["x", "pads"], ["y"], name="/Pad")],
         [i64("pads", [0, 0, -2**63, 0, 0, 0, BIG, 0])], [1, 2, 4, 4], "out of range"),
        ("slice_step_max", [helper.make_node("Slice", ["x", "s", "e", "a", "k"], ["y"], name="/Slice")],
         [i64("s", [0]), i64("e", [4]), i64("a", [2]), i64("k", [BIG])], [1, 2, 4, 4], ""),
        ("slice_step_min", [helper.make_node("Slice", ["x", "s", "e", "a", "k"], ["y"], name="/Slice")],
         [i64("s", [3]), i64("e", [-BIG]), i64("a", [2]), i64("k", [-2**63])], [1, 2, 4, 4], ""),
        # prune's channel analysis multiplied the spatial dims of a Flatten's input
        ("flatten_big", [helper.make_node("Flatten", ["x"], ["y"], name="/Flatten")], [], [3, 2, 2**62, 5], None),
    ]
    for name, nodes, inits, dims, needle in cases:
        yield save_model(os.path.join(d, name + ".onnx"), nodes, inits, [("x", dims)], [("y", None)]), needle
    # two MatMuls of 2^62 multiply-accumulates each: the total passes int64
    nodes = [helper.make_node("MatMul", ["x", "b"], [f"y{k}"], name=f"/m{k}/MatMul") for k in (1, 2)]
    yield save_model(os.path.join(d, "macs_sum.onnx"), nodes, [], [("x", [2**31, 2**16]), ("b", [2**16, 2**15])],
                     [("y1", None), ("y2", None)]), None
    # group 2^62 (issue 14: signed overflow in plain info), with weights that divide into it or not
    for k, (wd, xd) in enumerate([((0, 1, 3, 3), (1, 4, 8, 8)), ((2**62, 1, 1, 1), (1, 2**62, 8, 8)),
                                  ((4, 2, 3, 3), (1, 4, 8, 8)), ((4, 1, 3, 3), (1, 4, 8, 8))]):
        yield save_model(os.path.join(d, f"group_2_62_{k}.onnx"),
                         [helper.make_node("Conv", ["x", "w"], ["y"], name="/conv/Conv", group=2**62)],
                         [initializer("w", wd)], [("x", list(xd))], [("y", None)]), None


@case("sizes past int64 (pads, dims, slice steps, group 2^62, MACs) give a verdict, never an overflow")
def _():
    with tempfile.TemporaryDirectory() as d:
        for path, needle in hostile_sizes(d):
            name = os.path.basename(path)
            for cmd in ("info", "check", "show", "run"):
                rc, out, err = run(cmd, path)
                sane(rc, out, err, f"{cmd} {name}")
                if cmd == "run" and needle:
                    assert rc == 2 and needle in err, f"run {name}: exit {rc}: {err!r}"
                if cmd == "run" and needle == "":
                    assert rc == 0, f"run {name}: exit {rc}: {err!r}"  # one element on the sliced axis
            for args in (["prune", path, "conv", "--ratio", "0.5"], ["replace", path, "conv", "Conv2d(4, 4, 3)"],
                         ["fold-bn", path]):
                sane(*run(*args, "-o", os.path.join(d, "out.onnx")), f"{args[0]} {name}")
        p = subprocess.run([REMODEL, "info", "--json", os.path.join(d, "macs_sum.onnx")], capture_output=True)
        assert p.returncode == 0 and json.loads(p.stdout)["macs"] is None, p.stdout


@case("a node named '/./Conv' builds its module path without memcmp(NULL, ...) or a walk off the root")
def _():
    import numpy as np
    from onnx import helper
    with tempfile.TemporaryDirectory() as d:
        w = tensor("w", np.ones((4, 1, 3, 3), np.float32))
        # a scope-less Identity read by '/./Conv' and '/b/Conv' belongs to their common
        # ancestor: the path '.' had depth 2 and one ancestor, and the walk ran off the root
        path = save_model(os.path.join(d, "dot.onnx"),
                          [helper.make_node("Identity", ["w"], ["w_id"], name="Identity_0"),
                           helper.make_node("Conv", ["x", "w_id"], ["c"], name="/b/Conv", group=4, pads=[1, 1, 1, 1]),
                           helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu"),
                           helper.make_node("Conv", ["r", "w_id"], ["y"], name="/./Conv", group=4, pads=[1, 1, 1, 1])],
                          [w], [("x", [1, 4, 8, 8])], [("y", [1, 4, 8, 8])])
        for cmd in ("info", "show", "run"):
            rc, out, err = run(cmd, path)
            sane(rc, out, err, cmd)
            assert rc == 0, f"{cmd}: exit {rc}: {err}"


def malformed_models(d):
    """(file, what the one line must say, what check says) for nodes remodel used to read past silently: a
    float `strides` (ignored, the default used), `strides` given twice (the first taken), a
    Conv with 5 inputs, a graph input declared with a negative size (taken as dynamic: 1)."""
    import numpy as np
    from onnx import helper

    def conv_model(name, x_dims=(1, 3, 8, 8), extra_inputs=0, **attrs):
        w = tensor("conv.weight", np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32))
        inits = [w] + [tensor(f"e{k}", np.zeros(4, np.float32)) for k in range(extra_inputs + 1 if extra_inputs else 0)]
        conv = helper.make_node("Conv", ["x", "conv.weight"] + [t.name for t in inits[1:]], ["c"], name="/conv/Conv",
                                kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        for k, v in attrs.items():
            conv.attribute.extend(v if isinstance(v, list) else [v])
        nodes = [conv, helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu"),
                 helper.make_node("GlobalAveragePool", ["r"], ["y"], name="/pool/GlobalAveragePool")]
        return save_model(os.path.join(d, name), nodes, inits, [("x", list(x_dims))], [("y", [1, 4, 1, 1])])

    yield conv_model("float_strides.onnx", strides=helper.make_attribute("strides", [2.0, 2.0])), \
        ["/conv/Conv", "attribute 'strides' is FLOATS", "wants INTS"], "attribute 'strides' is FLOATS"
    yield conv_model("twice.onnx", strides=[helper.make_attribute("strides", [1, 1]),
                                            helper.make_attribute("strides", [2, 2])]), \
        ["/conv/Conv", "attribute 'strides' is given more than once"], "'strides' appears more than once"
    yield conv_model("five_inputs.onnx", extra_inputs=2), ["/conv/Conv", "has 5 inputs", "takes 2 to 3"], "has 5 inputs"
    yield conv_model("negative_dim.onnx", x_dims=(1, 3, -8, 8)), \
        ["graph input 'x'", "dimension 2 is declared as -8", "dim_param"], "warning: graph input 'x': dimension 2 is -8"


@case("malformed attributes, 5-input Conv, negative input dims: exit 2 where used, a check finding")
def _():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.onnx")
        for path, needles, finding in malformed_models(d):
            name = os.path.basename(path)
            for args in (["info", path], ["show", path], ["run", path], ["diff", path, path],
                         ["replace", path, "conv", "Conv2d(3, 4, 3, padding=1)", "-o", out],
                         ["prune", path, "conv", "--ratio", "0.5", "-o", out], ["fold-bn", path, "-o", out]):
                try:
                    one_error_line(*run(*args), name, *needles)
                except AssertionError as e:
                    raise AssertionError(f"{args[0]} {name}: {e}")
                assert not os.path.exists(out), f"{args[0]} {name} wrote {out}"
            rc, stdout, err = run("check", path)
            assert rc in (0, 1) and finding in stdout, f"check {name}: exit {rc}: {stdout!r}"
            rc, _, err = run("save", path, "-o", out)  # save interprets nothing: it keeps the file as it is
            assert rc == 0 and read(out) == read(path), f"save {name}: exit {rc}: {err}"
            os.unlink(out)


ORT_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort", "ort_run.js")


def ort_outputs(path, work, feeds):
    """Outputs of onnxruntime's CPU provider (tests/ort) on feeds {name: array}."""
    import numpy as np
    os.makedirs(work, exist_ok=True)
    args = []
    for k, (name, a) in enumerate(feeds.items()):
        f = os.path.join(work, f"input_{k}.npy")
        np.save(f, a)
        args.append(f"{name}={f}")
    p = subprocess.run(["node", ORT_RUN, path, work, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"onnxruntime refuses {os.path.basename(path)}: {p.stderr.strip()}"
    outs, k = [], 0
    while os.path.exists(os.path.join(work, f"output_{k}.npy")):
        outs.append(np.load(os.path.join(work, f"output_{k}.npy")))
        k += 1
    return outs


def remodel_outputs(path, work, feeds):
    """Outputs of remodel run on the same feeds."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    os.makedirs(work, exist_ok=True)
    args = []
    for k, (name, a) in enumerate(feeds.items()):
        f = os.path.join(work, f"in_{k}.npy")
        np.save(f, a)
        args += ["-i", f"{name}={f}"]
    rc, _, err = run("run", path, *args, "-o", work)
    assert rc == 0, f"remodel run {os.path.basename(path)}: {err}"
    outs, k = [], 0
    while os.path.exists(os.path.join(work, f"output_{k}.pb")):
        outs.append(numpy_helper.to_array(onnx.load_tensor(os.path.join(work, f"output_{k}.pb"))))
        k += 1
    return outs


def close(a, b, what, tol=1e-4):
    import numpy as np
    assert a.shape == b.shape, f"{what}: shapes {a.shape} and {b.shape}"
    e = float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30))
    assert e <= tol, f"{what}: differ by {e:.3g} of the output scale"


@case("prune --global --ratio 0.5 of shared_init (groups sharing weights) succeeds; onnxruntime agrees")
def _():
    import numpy as np
    import onnx
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "pruned.onnx")
        rc, stdout, err = run("prune", model("shared_init"), "--global", "--ratio", "0.5", "-o", out)
        assert rc == 0, f"exit {rc}: {err}"
        assert "--propagate" not in err and "verify: output" in stdout, (stdout, err)
        onnx.checker.check_model(onnx.load(out), full_check=True)
        rc, _, err = run("check", out)
        assert rc == 0, err
        m = onnx.load(out)
        dims = {t.name: list(t.dims) for t in m.graph.initializer}
        convs = [n for n in m.graph.node if n.op_type == "Conv"]
        # branch_a and branch_b shared one weight: each now reads its own, pruned on both axes
        a, b = (dims[n.input[1]] for n in convs if n.name in ("/branch_a/Conv", "/branch_b/Conv"))
        first = dims[convs[0].input[1]]
        assert a == b and a[1] == first[0] and a[0] < 8 and first[0] < 8, (a, b, first)
        x = {"input": np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)}
        for r, o in zip(remodel_outputs(out, os.path.join(d, "rm"), x), ort_outputs(out, os.path.join(d, "ort"), x)):
            close(r, o, "remodel and onnxruntime on the pruned model")


@case("two convs sharing one weight prune together (no edit lost): dead channels go, the output stays")
def _():
    import numpy as np
    from onnx import helper
    with tempfile.TemporaryDirectory() as d:
        rng = np.random.default_rng(0)
        w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
        w[[1, 3]] = 0  # output channels 1 and 3 of both convs are dead (no bias): pruning them is exact
        nodes = [helper.make_node("Conv", ["x", "stem.weight"], ["s"], name="/stem/Conv", pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["s"], ["s1"], name="/relu0/Relu"),
                 helper.make_node("Conv", ["s1", "shared.weight"], ["a"], name="/a/Conv", pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["a"], ["a1"], name="/relu1/Relu"),
                 helper.make_node("Conv", ["a1", "shared.weight"], ["b"], name="/b/Conv", pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["b"], ["b1"], name="/relu2/Relu"),
                 helper.make_node("GlobalAveragePool", ["b1"], ["p"], name="/pool/GlobalAveragePool"),
                 helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
                 helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm", transB=1)]
        inits = [tensor("stem.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
                 tensor("shared.weight", w), tensor("fc.weight", rng.standard_normal((5, 4)).astype(np.float32)),
                 tensor("fc.bias", rng.standard_normal(5).astype(np.float32))]
        src = save_model(os.path.join(d, "shared_pair.onnx"), nodes, inits, [("x", [1, 3, 8, 8])], [("y", [1, 5])])
        out = os.path.join(d, "pruned.onnx")
        for paths in (["a"], ["b"], ["a", "b"]):
            rc, stdout, err = run("prune", src, *paths, "--ratio", "0.5", "-o", out)
            assert rc == 0, f"prune {paths}: exit {rc}: {err}"
            x = {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}
            want = ort_outputs(src, os.path.join(d, "want"), x)[0]
            got = ort_outputs(out, os.path.join(d, "got"), x)[0]
            close(got, want, f"prune {' '.join(paths)}: onnxruntime on the pruned vs the original model", 1e-5)
            close(remodel_outputs(out, os.path.join(d, "rm"), x)[0], got, "remodel vs onnxruntime")


def chain_model(path, blocks):
    """x [1, 4, 4, 4] -> (Conv 4->4 1x1, Relu) x blocks -> GlobalAveragePool -> Flatten -> Gemm:
    a long graph of tiny steps, 2 * blocks + 3 nodes."""
    import numpy as np
    from onnx import helper
    rng = np.random.default_rng(0)
    nodes, inits, cur = [], [], "x"
    for i in range(blocks):
        w = f"layers.{i}.conv.weight"
        inits.append(tensor(w, rng.standard_normal((4, 4, 1, 1)).astype(np.float32)))
        nodes += [helper.make_node("Conv", [cur, w], [f"/layers.{i}/conv/Conv_output_0"], name=f"/layers.{i}/conv/Conv"),
                  helper.make_node("Relu", [f"/layers.{i}/conv/Conv_output_0"], [f"/layers.{i}/relu/Relu_output_0"],
                                   name=f"/layers.{i}/relu/Relu")]
        cur = f"/layers.{i}/relu/Relu_output_0"
    inits += [tensor("fc.weight", rng.standard_normal((10, 4)).astype(np.float32)),
              tensor("fc.bias", np.zeros(10, np.float32))]
    nodes += [helper.make_node("GlobalAveragePool", [cur], ["p"], name="/pool/GlobalAveragePool"),
              helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
              helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm", transB=1)]
    return save_model(path, nodes, inits, [("x", [1, 4, 4, 4])], [("y", [1, 10])])


def address_space(mb):
    import resource
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (mb << 20, resource.RLIM_INFINITY))


@case("prune of a 20k-node chain fits in 700 MB of address space (channel maps made it 1.5 GB)")
def _():
    rc, _, _ = run("--version", preexec_fn=address_space(700))
    if rc != 0:  # a sanitizer build reserves terabytes of address space: it cannot start
        print("     (remodel cannot start under a 700 MB address-space limit here: skipped)")
        return
    import onnx
    with tempfile.TemporaryDirectory() as d:
        src, out = chain_model(os.path.join(d, "chain.onnx"), 10000), os.path.join(d, "out.onnx")
        rc, stdout, err = run("prune", src, "--global", "--ratio", "0.5", "--no-verify", "-o", out,
                              preexec_fn=address_space(700), timeout=120)
        assert rc == 0, f"exit {rc}: {err}"
        m = onnx.load(out)
        maps = [p for p in m.metadata_props if p.key.startswith("remodel.channel_map/")]
        assert len(maps) > 10000, len(maps)  # the conv and relu outputs of the pruned groups
        for p in maps:
            kept = [int(c) for c in p.value.split(",")]
            assert 1 <= len(kept) < 4 and kept == sorted(set(kept)) and kept[-1] < 4, (p.key, p.value)


@case("a 200-byte model declaring a 16 GB input is refused at once by run, within the memory limit")
def _():
    import onnx
    from onnx import helper
    with tempfile.TemporaryDirectory() as d:
        g = helper.make_graph([helper.make_node("Gather", ["data", "indices"], ["y"], name="/Gather")], "g",
                              [helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, [3, 3]),
                               helper.make_tensor_value_info("indices", onnx.TensorProto.INT64, [2**31 - 1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        path = os.path.join(d, "huge_input.onnx")
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        for args in (["run", path], ["diff", path, path]):
            one_error_line(*run(*args, timeout=30), "huge_input.onnx", "2147483647 elements", "memory limit")


@case("a prune that removes nothing (--ratio 1e-308) exits 1 saying why, writes nothing; --allow-noop writes it")
def _():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.onnx")
        for args, needles in ((["layer1.0.conv1", "--ratio", "1e-308"], ["layer1.0.conv1's 8 channels", "0.125"]),
                              (["layer1.0.conv1", "--ratio", "0.1"], ["--ratio 0.1 of", "less than one channel"]),
                              (["--global", "--ratio", "1e-308"], ["prunable groups", "less than one channel"])):
            rc, stdout, err = run("prune", model("tiny_resnet"), *args, "-o", out)
            assert rc == 1, f"{args}: exit {rc}: {err}"
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "nothing was pruned" in lines[0] and "--allow-noop" in lines[0], lines
            for n in needles:
                assert n in lines[0], (n, lines[0])
            assert not os.path.exists(out), f"{args}: wrote {out}"
            rc, stdout, err = run("prune", model("tiny_resnet"), *args, "--allow-noop", "-o", out)
            assert rc == 0 and "nothing was pruned" in stdout and f"wrote {out}" in stdout, (rc, stdout, err)
            assert read(out) == read(model("tiny_resnet")), "an unchanged model, byte for byte"
            os.unlink(out)
        rc, stdout, err = run("prune", model("tiny_resnet"), "layer1.0.conv1", "--ratio", "0.25", "--allow-noop", "-o", out)
        assert rc == 0 and "nothing was pruned" not in stdout, (rc, stdout, err)


@case("a model truncated by another process while remodel reads it: exit 2 in one line, never a bus error")
def _():
    import random
    import numpy as np
    from onnx import helper
    w = np.random.default_rng(3).standard_normal((2048, 6400)).astype(np.float32)  # 52 MB, read in place
    with tempfile.TemporaryDirectory() as d:
        base = save_model(os.path.join(d, "big.onnx"), [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)],
                          [tensor("w", w)], [("x", [1, 6400])], [("y", [1, 2048])])
        path, seen = os.path.join(d, "t.onnx"), []
        for attempt in range(16):
            shutil.copyfile(base, path)
            p = subprocess.Popen([REMODEL, "run", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(random.Random(attempt).uniform(0.0, 0.05))
            os.truncate(path, 1000)
            _, err = p.communicate(timeout=120)
            err = err.decode("utf-8", "replace")
            assert p.returncode >= 0, f"attempt {attempt}: killed by signal {-p.returncode} (stderr {err!r})"
            assert p.returncode in (0, 2), f"attempt {attempt}: exit {p.returncode}: {err!r}"
            if p.returncode == 2:
                one_error_line(p.returncode, "", err, "truncated")
            seen.append(p.returncode)
        print(f"     (exits over 16 truncations: {seen.count(0)} finished first, {seen.count(2)} refused)")


T.finish()
