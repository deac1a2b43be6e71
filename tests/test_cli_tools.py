#!/usr/bin/env python3
"""The command line as a tool people install and script (issue 18): the option tables and
what is derived from them (parser, --help, the installed man page and bash completion),
--json on every command, and errors that teach. Standard library plus the onnx package
(python3-onnx) to build a model whose names are not UTF-8.

usage: test_cli_tools.py REMODEL TESTDATA_DIR BUILD_DIR SOURCE_DIR
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

REMODEL, TESTDATA, BUILD, SOURCE = (os.path.abspath(a) for a in sys.argv[1:5])
MODELS = sorted(f[:-5] for f in os.listdir(TESTDATA) if f.endswith(".onnx"))
COMMANDS = ["info", "check", "save", "show", "run", "diff", "replace", "prune", "fold-bn", "apply"]

import rmtest  # noqa: E402
from rmtest import Suite  # noqa: E402

T = Suite()
case = T.case


def run(*args, timeout=300, cwd=None):
    return T.run(REMODEL, *args, timeout=timeout, cwd=cwd, errors="replace")


def run_bytes(*args, timeout=300):
    return T.run(REMODEL, *args, timeout=timeout, errors="replace", binary_stdout=True)


def one_error_line(rc, out, err, *needles):
    rmtest.one_error_line(rc, out, err, *needles, empty_stdout=True)


def model(name):
    return os.path.join(TESTDATA, name + ".onnx")


def help_options(cmd):
    """The options `remodel CMD --help` lists: {"--name": takes_value}."""
    rc, out, err = run(cmd, "--help")
    assert rc == 0, err
    opts = {}
    section = out.split("\noptions:\n", 1)[1]
    for line in section.splitlines():
        m = re.match(r"^  (?:-(\w), )?\s*--([\w-]+)(?: (\S+))?", line)
        if m:
            opts["--" + m.group(2)] = (m.group(1), m.group(3))
    assert "--help" in opts, f"{cmd}: no --help among {opts}"
    return opts


def usage_line(cmd):
    rc, out, _ = run(cmd, "--help")
    first = out.split("\n\n", 1)[0]
    prefix = f"usage: remodel {cmd} "
    first = " ".join(first.split())
    assert first.startswith(prefix), first
    return first[len(prefix):]


# ---- the option tables: parser, usage, help -------------------------------------------------

@case("every option --help lists is one the parser takes, with a value when the help shows one")
def _():
    for cmd in COMMANDS:
        for opt, (short, metavar) in help_options(cmd).items():
            if opt == "--help":
                continue
            args = [cmd, opt] + (["1"] if metavar else [])
            rc, out, err = run(*args, "/nonexistent/model.onnx", "/nonexistent/b", timeout=60)
            assert "unknown option" not in err and "takes no value" not in err, f"{' '.join(args)}: {err}"
            if short:
                rc, out, err = run(cmd, "-" + short, *(["1"] if metavar else []), "/nonexistent/m.onnx", timeout=60)
                assert "unknown option" not in err, f"{cmd} -{short}: {err}"


@case("the README's command list is the usage lines the tables make")
def _():
    text = open(os.path.join(SOURCE, "README.md"), encoding="utf-8").read()
    block = text.split("## Commands", 1)[1].split("```", 2)[1]
    listed = {}
    for line in block.splitlines():
        m = re.match(r"^remodel (\S+)\s+(.*)$", line)  # the usage line; what it does is on the next
        if m:
            listed[m.group(1)] = " ".join(m.group(2).split())
    assert sorted(listed) == sorted(COMMANDS), sorted(listed)
    for cmd in COMMANDS:
        assert listed[cmd] == usage_line(cmd), f"README: remodel {cmd} {listed[cmd]}\n--help: {usage_line(cmd)}"


@case("unknown options and commands: exit 2, one line, the nearest named")
def _():
    one_error_line(*run("prune", model("tiny_resnet"), "--ratoi", "0.3", "-o", "x.onnx"), "'--ratoi'",
                   "did you mean --ratio?")
    one_error_line(*run("show", model("tiny_resnet"), "--jsno"), "did you mean --json?")
    one_error_line(*run("show", model("tiny_resnet"), "-json"), "did you mean --json?")
    one_error_line(*run("info", model("tiny_resnet"), "--layers"), "'--layers'", "an option of 'remodel diff'")
    one_error_line(*run("info", model("tiny_resnet"), "--frobnicate"), "unknown option '--frobnicate'")
    one_error_line(*run("prun", model("tiny_resnet")), "unknown command 'prun'", "did you mean prune?")
    one_error_line(*run("shwo", model("tiny_resnet")), "did you mean show?")
    one_error_line(*run("fold", model("tiny_resnet")), "did you mean fold-bn?")
    one_error_line(*run("xyzzy"), "unknown command 'xyzzy'")
    one_error_line(*run("--verison"), "did you mean --version?")
    # values: ranges, choices, missing values, flags given one, abbreviations
    one_error_line(*run("show", model("tiny_resnet"), "--depth", "-1"), "--depth needs an integer from 0 to")
    one_error_line(*run("replace", "m", "p", "s", "-o", "x", "--init", "ones"), "--init needs one of keep/kaiming/zeros")
    one_error_line(*run("prune", "m", "-o", "x", "--ratio", "1"), "--ratio needs a number between 0 and 1 (exclusive)")
    one_error_line(*run("diff", "a", "b", "--atol", "-1"), "--atol needs a non-negative number")
    one_error_line(*run("diff", "a", "b", "--atol"), "--atol needs a value (X)")
    one_error_line(*run("info", model("tiny_resnet"), "--json=yes"), "--json takes no value")
    one_error_line(*run("show", model("tiny_resnet"), "--json", "--paths"), "at most one of --json and --paths")
    one_error_line(*run("diff", "a", "b", "--r", "1"), "ambiguous", "--rtol", "--report")
    rc, out, err = run("show", model("tiny_resnet"), "--dep=1", "--js")  # getopt-style abbreviations
    assert rc == 0 and json.loads(out)["module"]["children"], err


@case("-V is --version; --help and help COMMAND; -h anywhere before --")
def _():
    rc1, v1, _ = run("-V")
    rc2, v2, _ = run("--version")
    assert rc1 == rc2 == 0 and v1 == v2 and v1.startswith("remodel "), (v1, v2)
    for cmd in COMMANDS:
        rc, out, _ = run(cmd, model("tiny_resnet"), "-h")
        assert rc == 0 and out.startswith(f"usage: remodel {cmd} "), out[:60]


# ---- installed: man page and bash completion ---------------------------------------------------

def install():
    d = tempfile.mkdtemp()
    p = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", d],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    found = {}
    for root, _, files in os.walk(d):
        for f in files:
            found[os.path.relpath(os.path.join(root, f), d)] = os.path.join(root, f)
    return d, found


DESTDIR, INSTALLED = None, {}


@case("meson install puts remodel.1 into man1 and the completion into bash-completion/completions")
def _():
    global DESTDIR, INSTALLED
    DESTDIR, INSTALLED = install()
    assert any(k.endswith("share/man/man1/remodel.1") for k in INSTALLED), sorted(INSTALLED)
    assert any(k.endswith("share/bash-completion/completions/remodel") for k in INSTALLED), sorted(INSTALLED)


def installed(suffix):
    paths = [v for k, v in INSTALLED.items() if k.endswith(suffix)]
    assert paths, f"nothing installed ends with {suffix}"
    return paths[0]


@case("man -l renders the page without warnings, and it names every option of every command")
def _():
    page = installed("man1/remodel.1")
    env = dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0", LC_ALL="C.UTF-8")
    p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip() == "", f"groff warnings: {p.stderr}"
    text = re.sub(r".\x08", "", p.stdout)  # overstrike bold/underline, if any
    text = text.replace("\u2010", "-").replace("\u2212", "-")
    assert "REMODEL(1)" in text and "SYNOPSIS" in text and "EXIT STATUS" in text
    sections = re.split(r"\n   (?=(?:" + "|".join(map(re.escape, COMMANDS)) + r")\n)", text)
    by_cmd = {s.split("\n", 1)[0]: s for s in sections[1:]}
    assert sorted(by_cmd) == sorted(COMMANDS), sorted(by_cmd)
    for cmd in COMMANDS:
        sect = " ".join(by_cmd[cmd].split())
        assert f"remodel {cmd} {usage_line(cmd)}" in sect, f"{cmd}: usage line missing from the man page"
        for opt in help_options(cmd):
            if opt != "--help":
                assert opt in sect, f"{cmd}: {opt} missing from its section of the man page"
    for opt in ("--help", "--version", "-V"):
        assert opt in text


def complete(words, cwd=None):
    """COMPREPLY of the installed completion for `words` (the last one is being completed)."""
    script = installed("completions/remodel")
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    prog = (f"source '{script}' || exit 3\n"
            f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; COMP_LINE=\"${{COMP_WORDS[*]}}\"\n"
            "COMPREPLY=(); _remodel remodel \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"\n"
            "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = dict(os.environ, PATH=os.path.dirname(REMODEL) + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True, text=True,
                       env=env, cwd=cwd or TESTDATA, timeout=120)
    assert p.returncode == 0, p.stderr
    return [x for x in p.stdout.split("\n") if x]


@case("bash completion: module paths from the model on the command line (remodel show MODEL --paths)")
def _():
    got = complete(["remodel", "show", model("resnet18"), "layer4.0.c"])
    assert "layer4.0.conv1" in got and "layer4.0.conv2" in got, got
    assert all(x.startswith("layer4.0.c") for x in got), got
    # the same for replace's PATH and prune's PATHs, after options with values
    got = complete(["remodel", "prune", "--ratio", "0.3", model("resnet18"), "-o", "x.onnx", "layer1.0.conv1",
                    "layer3.1.c"])
    assert got == ["layer3.1.conv1", "layer3.1.conv2"], got
    got = complete(["remodel", "replace", "--init=kaiming", model("tiny_resnet"), "layer1.1."])
    rc, out, _ = run("show", model("tiny_resnet"), "--paths")
    assert rc == 0 and got == [p for p in out.splitlines() if p.startswith("layer1.1.")], (got, out)
    # an unreadable model completes nothing (and prints nothing)
    assert complete(["remodel", "show", "/nonexistent.onnx", "lay"]) == []


@case("bash completion: commands, each command's options, choices, model files")
def _():
    assert complete(["remodel", "pr"]) == ["prune"]
    assert set(complete(["remodel", ""])) >= set(COMMANDS)
    opts = complete(["remodel", "prune", model("tiny_resnet"), "--"])
    assert set(opts) == {o for o in help_options("prune")}, opts
    assert complete(["remodel", "replace", "--init", ""]) == ["keep", "kaiming", "zeros"]
    assert complete(["remodel", "prune", "--criterion", "l"]) == ["l1", "l2"]
    got = complete(["remodel", "info", "tiny_res"])
    assert sorted(got) == sorted(f for f in os.listdir(TESTDATA) if f.startswith("tiny_res")), got
    assert complete(["remodel", "help", "fo"]) == ["fold-bn"]


@case("show --paths: one module path per line, what show --json holds, in its order")
def _():
    for m in MODELS:
        rc, out, err = run("show", model(m), "--paths")
        assert rc == 0, err
        rc, doc, err = run("show", model(m), "--json")
        paths = []

        def walk(mod):
            if mod["path"]:
                paths.append(mod["path"])
            for c in mod["children"]:
                walk(c)
        walk(json.loads(doc)["module"])
        assert out.splitlines() == paths, m
    rc, out, _ = run("show", model("resnet18"), "layer4", "--paths", "--depth", "1")
    assert out.split() == ["layer4", "layer4.0", "layer4.1"], out


# ---- --json on every command ---------------------------------------------------------------------

def json_doc(out):
    """One JSON document: strict UTF-8 (no surrogates, no ill-formed bytes), then json.loads on the
    raw bytes as the issue asks."""
    out.decode("utf-8")  # strict: raises on anything that is not UTF-8
    return json.loads(out)


def first_conv(m):
    rc, out, err = run_bytes("show", m, "--json")
    assert rc == 0, err

    def walk(mod):
        if mod.get("type") == "Conv2d":
            return mod
        for c in mod["children"]:
            r = walk(c)
            if r:
                return r
    return walk(json_doc(out)["module"])


def every_command(m, d, path=None):
    """(name, args) of every command on model m, writing into folder d; replace rewrites the first
    Conv2d (at path, as bytes when its name is not UTF-8) with its own repr."""
    conv = first_conv(m)
    path = path or conv["path"]
    return [
        ("info", ["info", m]), ("check", ["check", m]), ("show", ["show", m]),
        ("save", ["save", m, "-o", os.path.join(d, "saved.onnx")]),
        ("run", ["run", m, "-o", os.path.join(d, "run")]),
        ("diff", ["diff", m, m, "--layers"]),
        ("replace", ["replace", m, path, conv["repr"], "-o", os.path.join(d, "replaced.onnx")]),
        ("prune", ["prune", m, "--global", "--ratio", "0.3", "-o", os.path.join(d, "pruned.onnx")]),
        ("fold-bn", ["fold-bn", m, "-o", os.path.join(d, "folded.onnx")]),
        ("apply", ["apply", m, script(d, "fold-bn\n"), "-o", os.path.join(d, "applied.onnx")]),
    ]


def script(d, text):
    """An edit script holding text, in folder d."""
    path = os.path.join(d, "script.txt")
    with open(path, "w") as f:
        f.write(text)
    return path


def check_edit_doc(name, doc, d):
    for k in ("command", "file", "notes", "modules", "params", "macs", "verify", "written"):
        assert k in doc, f"{name}: no {k} in {sorted(doc)}"
    assert doc["command"] == name
    v = doc["verify"]
    assert v and isinstance(v["pass"], bool) and v["outputs"] and "cosine" in v["outputs"][0], v
    w = doc["written"][0]
    assert w["role"] == "model" and w["bytes"] == os.path.getsize(w["path"]), w
    for k in ("params", "macs"):
        assert set(doc[k]) == {"before", "after"}, doc[k]


@case("--json on every command, for every testdata model: one document, strict UTF-8, the schema")
def _():
    for m in MODELS:
        with tempfile.TemporaryDirectory() as d:
            for name, args in every_command(model(m), d):
                rc, out, err = run_bytes(*args, "--json")
                assert rc in (0, 1), f"{m}: {name}: exit {rc}: {err}"
                doc = json_doc(out)
                if name in ("replace", "prune", "fold-bn", "apply"):
                    check_edit_doc(name, doc, d)
                if name == "replace":  # the conv replaced by its own repr: nothing changes
                    assert doc["modules"] == [] and doc["verify"]["pass"], (m, doc["modules"], doc["verify"])
                    assert doc["params"]["before"] == doc["params"]["after"]
                if name == "prune":  # MACs: shared weights copied per user may add parameters
                    assert doc["macs"]["after"] < doc["macs"]["before"], (m, doc["macs"])
                    assert doc["groups"] and all(g["after"] <= g["before"] for g in doc["groups"])
                    assert doc["modules"], f"{m}: prune changed no module"
                if name == "save":
                    assert doc["written"][0]["bytes"] == os.path.getsize(model(m))
                if name == "check":
                    assert doc["ok"] and doc["problems"] == 0 and doc["nodes"] > 0, doc


def bad_names_model(path):
    """A small CNN made with onnx's helpers whose node, tensor, graph and producer names hold
    bytes that are not UTF-8 (protobuf in Python refuses them: patched into the bytes)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np
    rng = np.random.default_rng(1)

    def t(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
    inits = [t("blkQQ1.conv.weight", 8, 3, 3, 3), t("blkQQ1.bn.weight", 8), t("blkQQ1.bn.bias", 8),
             t("blkQQ1.bn.running_mean", 8), numpy_helper.from_array(np.ones(8, np.float32), "blkQQ1.bn.running_var"),
             t("headQQ2.weight", 4, 8, 1, 1), t("headQQ2.bias", 4)]
    nodes = [
        helper.make_node("Conv", ["inQQ3", "blkQQ1.conv.weight"], ["c"], name="/blkQQ1/conv/Conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "blkQQ1.bn.weight", "blkQQ1.bn.bias", "blkQQ1.bn.running_mean",
                                                "blkQQ1.bn.running_var"], ["b"], name="/blkQQ1/bn/BatchNormalization"),
        helper.make_node("Relu", ["b"], ["r"], name="/blkQQ1/relu/Relu"),
        helper.make_node("Conv", ["r", "headQQ2.weight", "headQQ2.bias"], ["outQQ4"], name="/headQQ2/Conv",
                         kernel_shape=[1, 1]),
    ]
    g = helper.make_graph(nodes, "gQQ5", [helper.make_tensor_value_info("inQQ3", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("outQQ4", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    mp = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="prodQQ6")
    onnx.checker.check_model(mp)
    data = mp.SerializeToString()
    # equal lengths keep every protobuf length prefix right
    bad = {b"QQ1": b"\xff\xc0\x80", b"QQ2": b"\xed\xa0\x80", b"QQ3": b"\xe2\x28\xa1", b"QQ4": b"\xf4\x90\x80",
           b"QQ5": b"\x1f\x7f\xfe", b"QQ6": b"\xc3\xa9\x80"}
    for k, v in bad.items():
        data = data.replace(k, v)
    with open(path, "wb") as f:
        f.write(data)
    return b"blk\xff\xc0\x80.conv"


@case("--json on every command for a model whose names are not UTF-8: valid UTF-8, U+FFFD in their place")
def _():
    with tempfile.TemporaryDirectory() as d:
        m = os.path.join(d, "bad.onnx")
        conv_path = bad_names_model(m)
        rc, out, err = run("check", m)
        assert rc == 0, out + err
        seen = set()
        for name, args in every_command(m, d, conv_path):
            rc, out, err = run_bytes(*args, "--json")
            assert rc in (0, 1), f"{name}: exit {rc}: {err}"
            doc = json_doc(out)
            text = json.dumps(doc, ensure_ascii=False)
            if name not in ("check", "save"):  # the ones that print the model's names
                assert "\ufffd" in text, f"{name}: no replacement character in {text[:300]}"
            seen.add(name)
            if name in ("replace", "prune", "fold-bn"):
                check_edit_doc(name, doc, d)
        assert seen == set(COMMANDS), seen
        # the module path with ill-formed bytes works as an argument, too
        rc, out, err = run_bytes("show", m, conv_path, "--json")
        assert rc == 0, err
        assert json_doc(out)["module"]["path"] == conv_path.decode("utf-8", "replace")


@case("--json: errors go to stderr in one line and leave stdout empty; check's findings are a document")
def _():
    with tempfile.TemporaryDirectory() as d:
        for args in (["info", os.path.join(d, "none.onnx")],
                     ["save", model("tiny_resnet"), "-o", os.path.join(d, "no", "x.onnx")],
                     ["replace", model("tiny_resnet"), "layer9", "Conv2d(8, 8, 3)", "-o", os.path.join(d, "x.onnx")],
                     ["prune", model("tiny_resnet"), "fc", "--ratio", "0.5", "-o", os.path.join(d, "x.onnx")],
                     ["fold-bn", model("tiny_resnet"), "-o", d]):
            one_error_line(*run(*args, "--json"))
        assert os.listdir(d) == [], os.listdir(d)
        broken = os.path.join(TESTDATA, "broken", "duplicate_node_name.onnx")
        rc, out, err = run_bytes("check", broken, "--json")
        doc = json_doc(out)
        assert rc == 1 and not doc["ok"] and doc["problems"] >= 1 and doc["findings"][0]["kind"] == "problem", doc


@case("an edit's --json says what changed: modules, params and MACs before/after, verdict, files")
def _():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.onnx")
        rc, text, err = run("replace", model("tiny_resnet"), "layer1.0.conv1", "Conv2d(8, 5, 3, padding=1, bias=False)",
                            "--propagate", "-o", out, "--external-data", "r.data", "--json")
        assert rc == 0, err
        doc = json.loads(text)
        assert doc["path"] == "layer1.0.conv1" and doc["spec"].startswith("Conv2d(8, 5")
        changed = {x["path"]: (x["before"], x["after"]) for x in doc["modules"]}
        assert set(changed) == {"layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2"}, changed
        assert changed["layer1.0.conv2"][1].startswith("Conv2d(5, 8,"), changed
        # the parameter count as onnx counts it, before and after
        import onnx
        import numpy as np
        count = lambda p: sum(int(np.prod(t.dims)) for t in onnx.load(p).graph.initializer)
        assert doc["params"] == {"before": count(model("tiny_resnet")), "after": count(out)}, doc["params"]
        assert doc["macs"]["after"] < doc["macs"]["before"]
        assert doc["verify"]["pass"] is False and 0 < doc["verify"]["outputs"][0]["cosine"] < 1
        roles = {os.path.basename(w["path"]): w["role"] for w in doc["written"]}
        assert roles == {"r.onnx": "model", "r.data": "external_data"}, roles
        rc, text, err = run("fold-bn", model("tiny_resnet"), "-o", out, "--no-verify", "--json", "--seed",
                            "18446744073709551615")
        doc = json.loads(text)
        assert rc == 0 and doc["verify"] is None and doc["folded"] == 8, doc
        removed = [x["path"] for x in doc["modules"] if x["after"] is None]
        assert "bn1" in removed and all(x["before"] for x in doc["modules"]), doc["modules"]


@case("a TensorFlow SavedModel folder is named, with tf2onnx's command")
def _():
    with tempfile.TemporaryDirectory() as d:
        sm = os.path.join(d, "exported")
        os.makedirs(os.path.join(sm, "variables"))
        with open(os.path.join(sm, "saved_model.pb"), "wb") as f:
            f.write(b"\x08\x01\x12\x00")
        for cmd in ("info", "show", "check"):
            one_error_line(*run(cmd, sm), "TensorFlow SavedModel folder", "tf2onnx")


if DESTDIR:
    shutil.rmtree(DESTDIR, ignore_errors=True)
T.finish()
