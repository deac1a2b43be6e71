"""remodel: edit ONNX CNNs the way you edit a PyTorch nn.Module, from Python.

A binding of libremodel (include/remodel.h) through ctypes and the standard library
alone; numpy arrays go in and come out of runs when numpy can be imported, nested lists
otherwise.

    import remodel
    m = remodel.load("resnet18.onnx")
    print(m.show("layer4.0"))
    orig = m.clone()
    m.replace("layer4.0.conv1", "Conv2d(256, 256, 3, 2, 1, bias=False)", propagate=True)
    m.prune(ratio=0.3)                       # every prunable group, ranked together
    print(remodel.diff(orig, m).cosine)
    m.save("resnet18-small.onnx")

Every failure raises remodel.Error, carrying the library's one-line message, its code
(``code_name``: "RM_ENOTFOUND", ...) and, when one would help, a hint naming the
argument that fixes it. An edit that fails leaves the model as it was.
"""

import ctypes
import dataclasses
import math
import os
import threading
import weakref
from array import array
from typing import Dict, List, Optional, Tuple

from . import _capi as C

try:
    import numpy as _np
except ImportError:  # lists in and out
    _np = None

_lib, LIBRARY_PATH = C.load_library()
__version__ = _lib.rm_version().decode()

__all__ = ["Error", "Model", "Session", "Module", "Finding", "PruneGroup", "PruneReport", "DiffOutput",
           "DiffLayer", "DiffResult", "load", "load_bytes", "diff", "version", "LIBRARY_PATH"]


def version() -> str:
    """The version of the libremodel loaded ("0.2.0")."""
    return __version__


# ---- errors -------------------------------------------------------------------------------

_FIX_NAMES = {C.RM_FIX_PROPAGATE: "propagate", C.RM_FIX_GLOBAL: "global",
              C.RM_FIX_EXTERNAL_DATA: "external_data", C.RM_FIX_INPUT_SHAPE: "input_shape"}
_FIX_HINTS = {
    "propagate": "propagate=True carries channel changes to dependent layers",
    "global": "global_=True (or no paths) prunes every prunable group",
    "external_data": "save(path, external_data='NAME.bin') writes the weights beside the model",
    "input_shape": "give the input's dims: Model.set_input_shape(name, dims), or feed the input to run",
}


class Error(Exception):
    """A failure in remodel.

    message    the library's one line: what, where and why
    code       the RM_E* number (negative), code_name its name ("RM_ENOTFOUND")
    fix        what would help, or None: "propagate", "global", "external_data", "input_shape"
    hint       that as a sentence naming this binding's argument, or None
    str(e) is the message followed by the hint in parentheses.
    """

    def __init__(self, message: str, code: int = C.RM_EUSAGE, fix: Optional[str] = None):
        self.message = message
        self.code = code
        self.code_name = _lib.rm_err_name(code).decode()
        self.fix = fix
        self.hint = _FIX_HINTS.get(fix) if fix else None
        super().__init__(message + (f" ({self.hint})" if self.hint else ""))


def _raise(err: C.rm_error, rc: int, context: Optional[str] = None):
    code = err.code if err.code else rc
    msg = err.msg.decode("utf-8", "replace") or _lib.rm_strerror(code).decode()
    if context:
        msg = f"{context}: {msg}"
    raise Error(msg, code, _FIX_NAMES.get(err.fix))


def _call(fn, *args, context: Optional[str] = None):
    """fn(*args, &err): its return code checked, an Error raised for a negative one."""
    err = C.rm_error()
    rc = fn(*args, ctypes.byref(err))
    if rc < 0:
        _raise(err, rc, context)
    return rc


def _fs(path) -> bytes:
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsencode(path)
    raise TypeError(f"expected a path (str, bytes or os.PathLike), got {type(path).__name__}")


def _s(b: Optional[bytes]) -> Optional[str]:
    """A name from the model: bytes that are not UTF-8 survive the round trip back."""
    return None if b is None else b.decode("utf-8", "surrogateescape")


def _b(s: str) -> bytes:
    if not isinstance(s, str):
        raise TypeError(f"expected a str, got {type(s).__name__}")
    return s.encode("utf-8", "surrogateescape")


def _u64(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    if not 0 <= v < 1 << 64:
        raise Error(f"{what} must be an integer from 0 to 18446744073709551615, got {v}")
    return v


def _threads(v) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"threads must be an int, not {type(v).__name__}")
    if not 0 <= v <= 1024:
        raise Error(f"threads must be 0 (the library's default) to 1024, got {v}")
    return v


def _findings(f: C.rm_findings) -> List["Finding"]:
    if f.oom:
        raise Error("out of memory: findings were lost", C.RM_ENOMEM)
    return [Finding(_KIND_NAMES.get(f.v[i].kind, "problem"), None if f.v[i].node < 0 else f.v[i].node,
                    (f.v[i].text or b"").decode("utf-8", "replace")) for i in range(f.n)]


# ---- tensors in and out ---------------------------------------------------------------------

# enum rm_dtype -> (numpy dtype name, array typecode, bytes per element)
_DTYPES = {C.RM_DTYPE_FLOAT: ("float32", "f", 4), C.RM_DTYPE_UINT8: ("uint8", "B", 1),
           C.RM_DTYPE_INT8: ("int8", "b", 1), C.RM_DTYPE_INT32: ("int32", "i", 4),
           C.RM_DTYPE_INT64: ("int64", "q", 8), C.RM_DTYPE_BOOL: ("bool", "B", 1),
           C.RM_DTYPE_DOUBLE: ("float64", "d", 8)}


def _shape_of(x, name: str) -> Tuple[int, ...]:
    """The dims of a nested list, checked to be rectangular."""
    shape = []
    while isinstance(x, (list, tuple)):
        shape.append(len(x))
        if not x:
            break
        x = x[0]
    return tuple(shape)


def _flatten(x, shape, depth, out, name):
    if depth == len(shape):
        if isinstance(x, (list, tuple)):
            raise Error(f"input '{name}': a ragged nested list (deeper than {list(shape)} at some place)")
        out.append(x)
        return
    if not isinstance(x, (list, tuple)) or len(x) != shape[depth]:
        got = len(x) if isinstance(x, (list, tuple)) else "a scalar"
        raise Error(f"input '{name}': a ragged nested list: {got} where {shape[depth]} items were expected "
                    f"at depth {depth} (shape {list(shape)})")
    for v in x:
        _flatten(v, shape, depth + 1, out, name)


def _to_tensor(value, dtype: int, name: str):
    """value as an rm_tensor of dtype, and what keeps its memory alive. A C-contiguous
    numpy array of that dtype is passed as it is (the library copies it)."""
    if dtype not in _DTYPES:
        raise Error(f"input '{name}' has element type {_lib.rm_dtype_name(dtype).decode()}, which remodel "
                    f"does not feed", C.RM_EUNSUPPORTED)
    npname, code, size = _DTYPES[dtype]
    t = C.rm_tensor()
    t.dtype = dtype
    if _np is not None and not isinstance(value, (list, tuple, int, float)):
        arr = _np.asarray(value)
        if arr.dtype != _np.dtype(npname) and not _np.can_cast(arr.dtype, npname, "same_kind"):
            raise Error(f"input '{name}': a {arr.dtype} array cannot feed a {npname} input without losing "
                        f"values; convert it first")
        arr = _np.ascontiguousarray(arr, dtype=npname)
        shape, keep = arr.shape, arr
        addr = arr.ctypes.data
    else:
        if isinstance(value, bool) or not isinstance(value, (list, tuple, int, float)):
            raise Error(f"input '{name}': expected a nested list of numbers"
                        f"{' or an array' if _np is not None else ''}, got {type(value).__name__}")
        shape = _shape_of(value, name)
        flat: list = []
        _flatten(value, shape, 0, flat, name)
        try:
            keep = array(code, (bool(v) for v in flat) if dtype == C.RM_DTYPE_BOOL else flat)
        except (TypeError, OverflowError) as e:
            raise Error(f"input '{name}': values do not fit {npname}: {e}") from None
        addr = keep.buffer_info()[0] if len(keep) else None
    if len(shape) > C.RM_MAX_RANK:
        raise Error(f"input '{name}': rank {len(shape)} is above {C.RM_MAX_RANK}")
    t.rank = len(shape)
    n = 1
    for i, d in enumerate(shape):
        t.dims[i] = d
        n *= d
    t.numel = n
    t.data = addr
    t.owned = 0
    return t, keep


def _from_tensor(t: C.rm_tensor, as_numpy: bool):
    """A copy of t: a numpy array, or nested lists (a scalar for rank 0)."""
    if t.dtype not in _DTYPES:
        raise Error(f"an output of element type {_lib.rm_dtype_name(t.dtype).decode()} cannot be returned",
                    C.RM_EUNSUPPORTED)
    npname, code, size = _DTYPES[t.dtype]
    dims = tuple(t.dims[i] for i in range(t.rank))
    nbytes = t.numel * size
    if nbytes and not t.data:
        raise Error("the library returned a tensor without data", C.RM_EFORMAT)
    if as_numpy:
        arr = _np.empty(dims, dtype=npname)
        if nbytes:
            ctypes.memmove(arr.ctypes.data, t.data, nbytes)
        return arr
    flat = array(code)
    if nbytes:
        flat.frombytes(ctypes.string_at(t.data, nbytes))
    vals = [bool(v) for v in flat] if t.dtype == C.RM_DTYPE_BOOL else flat.tolist()
    return vals[0] if not dims else _nest(vals, dims)


def _nest(flat: list, dims: Tuple[int, ...]) -> list:
    if len(dims) == 1:
        return flat
    step = math.prod(dims[1:])
    return [_nest(flat[i * step:(i + 1) * step], dims[1:]) for i in range(dims[0])]


def _inputs_dict(inputs, names: List[str]) -> Dict[str, object]:
    """inputs as name -> value: a dict, or one value for a model with one input."""
    if inputs is None:
        return {}
    if isinstance(inputs, dict):
        for k in inputs:
            if not isinstance(k, str):
                raise TypeError(f"input names must be str, got {type(k).__name__}")
            if k not in names:
                raise Error(f"the model has no input named '{k}' (its inputs: {', '.join(names) or 'none'})",
                            C.RM_ENOTFOUND)
        return dict(inputs)
    if len(names) != 1:
        raise Error(f"the model has {len(names)} inputs ({', '.join(names)}); give them as a dict name -> array")
    return {names[0]: inputs}


# ---- result types ---------------------------------------------------------------------------

_KIND_NAMES = {C.RM_FINDING_PROBLEM: "problem", C.RM_FINDING_WARNING: "warning", C.RM_FINDING_NOTE: "note"}


@dataclasses.dataclass(frozen=True)
class Finding:
    """What a check found or an edit did: kind is "problem", "warning" or "note"."""
    kind: str
    node: Optional[int]
    text: str

    def __str__(self):
        return self.text


@dataclasses.dataclass(frozen=True)
class Module:
    """One nn.Module of the tree rebuilt from the export."""
    path: str               # "layer4.0.conv1", "" for the root
    name: str               # last path component
    type: str               # "Conv2d", "BasicBlock", "Sequential", "Module" (unknown)
    type_known: bool        # False: the class could not be determined (never guessed)
    leaf: bool
    bn_folded: bool         # a Conv2d whose BatchNorm the exporter folded into it
    depth: int
    parent: Optional[str]   # the parent's path, None for the root
    children: Tuple[str, ...]
    nodes: Tuple[str, ...]  # ONNX node names (or "<op> #<index>")
    args: Dict[str, object]  # constructor arguments of a leaf: ints, tuples, floats, bools, strs
    params: Dict[str, str]  # role ("weight", "bias", "running_mean", ...) -> tensor name
    repr: str               # PyTorch's repr line: "Conv2d(256, 512, kernel_size=(3, 3), ...)"
    source: str = "none"    # what gave the path: dynamo, scope, param, tensor, slash, derived
    qualname: Optional[str] = None  # the exporter's full class name, when it wrote one


@dataclasses.dataclass(frozen=True)
class PruneGroup:
    name: str               # module path of its first producing conv
    producers: int          # convs whose outputs are these channels
    before: int
    after: int
    prunable: bool
    reason: Optional[str]   # why not, when not prunable (or why left whole, when ignored)
    ignored: bool = False   # prunable, but left whole: an ignored module touches it


@dataclasses.dataclass(frozen=True)
class PruneRefit:
    """A layer refitted after pruning: its relative error on the calibration rows."""
    name: str
    rows: int
    unknowns: int
    error_before: float
    error_after: float


@dataclasses.dataclass(frozen=True)
class PruneReport:
    groups: List[PruneGroup]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    notes: List[str]        # what changed, one line per group
    dry_run: bool = False   # the figures are the plan's; nothing was changed
    samples: int = 0        # calibration samples run
    refits: List["PruneRefit"] = dataclasses.field(default_factory=list)  # with reconstruct=True


@dataclasses.dataclass(frozen=True)
class DiffOutput:
    name: str
    shape: Tuple[int, ...]
    max_abs: float
    max_rel: float
    mean_abs: float
    cosine: float
    compared: int           # elements compared
    mismatched: int         # elements outside tolerance
    passed: bool
    classes: int            # [N, classes] outputs: classes, else 0
    top1: Optional[float]   # fraction of rows whose argmax agrees; None without classes
    top5: Optional[float]   # mean top-5 overlap; None unless classes > 5
    aligned: bool           # compared through a channel map
    note: Optional[str]     # why it failed without numbers
    cosine_mean: float = 1.0  # cosine is the worst sample's; this the mean over samples
    scale: float = 0.0      # max |A| over every sample
    atol: float = 0.0       # the absolute tolerance applied (the largest, when scaled per sample)


@dataclasses.dataclass(frozen=True)
class DiffLayer:
    path: str
    type: str
    tensor: str
    max_abs: float
    max_rel: float
    mean_abs: float
    cosine: float
    compared: int
    mismatched: int
    passed: bool
    comparable: bool
    aligned: bool
    note: Optional[str]


@dataclasses.dataclass(frozen=True)
class DiffResult:
    """Two models run on the same inputs and compared (remodel.diff)."""
    passed: bool            # every output within tolerance
    atol: Optional[float]   # None: scaled per output (atol_scale * max|A|)
    rtol: float
    outputs: List[DiffOutput]
    layers: List[DiffLayer]  # with layers=True: every module in topological order
    first_divergent: Optional[DiffLayer]
    atol_scale: float = 1e-5
    min_cosine: float = 0.9999
    min_top1: float = 1.0
    samples: int = 1
    seed: int = 0

    @property
    def max_abs(self) -> float:
        """The largest absolute difference over every output."""
        return max((o.max_abs for o in self.outputs), default=0.0)

    @property
    def cosine(self) -> float:
        """The lowest cosine similarity over the outputs."""
        return min((o.cosine for o in self.outputs), default=1.0)

    def to_dict(self) -> dict:
        """The document `remodel diff --json` prints."""
        def stats(x):
            return {"max_abs": x.max_abs, "max_rel": x.max_rel, "mean_abs": x.mean_abs, "cosine": x.cosine}
        return {
            "pass": self.passed, "samples": self.samples, "seed": self.seed, "atol": self.atol,
            "atol_scale": self.atol_scale, "rtol": self.rtol, "min_cosine": self.min_cosine,
            "min_top1": self.min_top1,
            "outputs": [{"name": o.name, "shape": list(o.shape), **stats(o), "cosine_mean": o.cosine_mean,
                         "scale": o.scale, "atol": o.atol, "top1": o.top1, "top5": o.top5,
                         "mismatched": o.mismatched, "compared": o.compared, "aligned": o.aligned,
                         "pass": o.passed, "note": o.note} for o in self.outputs],
            "layers": [{"path": x.path, "type": x.type, "tensor": x.tensor, **stats(x), "pass": x.passed,
                        "comparable": x.comparable, "aligned": x.aligned, "note": x.note} for x in self.layers],
            "first_divergent": self.first_divergent.path if self.first_divergent else None,
        }


# ---- models -----------------------------------------------------------------------------------

def _load_options(max_memory):
    if max_memory is None:
        return None
    o = C.rm_load_options()
    o.max_memory = _u64(max_memory, "max_memory")
    return ctypes.byref(o)


def load(path, *, max_memory: Optional[int] = None) -> "Model":
    """Load an ONNX file. Tensors stored as external data are mapped read-only from the
    model's folder. max_memory: bytes unpacking may take (default half the machine's RAM)."""
    h = ctypes.c_void_p()
    _call(_lib.rm_model_load, ctypes.byref(h), _fs(path), _load_options(max_memory))
    return Model(h)


def load_bytes(data, name: str = "<bytes>", *, max_memory: Optional[int] = None) -> "Model":
    """Load a model from bytes in memory (copied); name is used in messages."""
    buf = bytes(data) if not isinstance(data, bytes) else data
    h = ctypes.c_void_p()
    _call(_lib.rm_model_load_buffer, ctypes.byref(h), buf, len(buf), _b(name), _load_options(max_memory))
    return Model(h)


def _locked(method):
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    wrapper.__name__, wrapper.__doc__, wrapper.__qualname__ = method.__name__, method.__doc__, method.__qualname__
    return wrapper


class Model:
    """An ONNX model in memory. Edits change it in place, and only when they succeed: an
    edit runs on a copy that replaces the model's contents on success (copies share tensor
    bytes, so that costs kilobytes). Free it with close() or a with block; the garbage
    collector frees it otherwise. Methods of one model are serialised by a lock."""

    def __init__(self, handle: ctypes.c_void_p):
        # made by load() and the edits; a path here would be taken for a pointer
        if not isinstance(handle, ctypes.c_void_p):
            raise TypeError(f"Model() takes a library handle, not {type(handle).__name__}: "
                            "open a file with remodel.load(path)")
        if not handle:
            raise Error("no model", C.RM_EUSAGE)
        self._h = handle
        self._lock = threading.RLock()
        self._sessions = weakref.WeakSet()

    # lifetime
    def close(self) -> None:
        """Free the model (and every session compiled from it). Idempotent."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            self._drop_sessions()
            h, self._h = self._h, None
            if h:
                _lib.rm_model_free(h)

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing to report to during collection
            pass

    @property
    def closed(self) -> bool:
        return not self._h

    def _handle(self):
        if not self._h:
            raise Error("the model is closed", C.RM_EUSAGE)
        return self._h

    def _drop_sessions(self):
        for s in list(self._sessions):
            s.close()

    def _swap(self, h):
        """The edited copy h becomes this model; sessions of the old contents go."""
        self._drop_sessions()
        old, self._h = self._h, h
        _lib.rm_model_free(old)

    def _edit_copy(self):
        h = ctypes.c_void_p()
        _call(_lib.rm_model_clone, ctypes.byref(h), self._handle())
        return h

    def __repr__(self):
        if not self._h:
            return "<remodel.Model closed>"
        p = self.path
        return f"<remodel.Model {p!r}>" if p else "<remodel.Model>"

    # basics
    @property
    def path(self) -> Optional[str]:
        """The file the model was loaded from, or None."""
        p = _lib.rm_model_path(self._handle())
        return None if p is None else os.fsdecode(p)

    @property
    def history(self) -> List[str]:
        """The edits made to the model (by any remodel), one line each: when, which remodel, what."""
        h = _lib.rm_model_history(self._handle())
        return [] if h is None else h.decode("utf-8", "replace").split("\n")

    @_locked
    def clone(self) -> "Model":
        """A copy to edit; tensor bytes are shared until an edit gives a tensor new ones."""
        return Model(self._edit_copy())

    @_locked
    def save(self, path, external_data: Optional[str] = None, external_threshold: Optional[int] = None) -> None:
        """Write the model atomically. external_data: a bare file name beside path that
        receives every initializer of external_threshold bytes or more (default 1024)."""
        o = C.rm_save_options()
        o.external_data = None if external_data is None else _fs(external_data)
        o.external_threshold = 0 if external_threshold is None else _u64(external_threshold, "external_threshold")
        _call(_lib.rm_model_save, self._handle(), _fs(path), ctypes.byref(o))

    @_locked
    def set_input_shape(self, name: str, dims) -> None:
        """Give graph input `name` its dims (all of them) for shape inference and runs."""
        dims = [int(d) for d in dims]
        if len(dims) > C.RM_MAX_RANK:
            raise Error(f"input '{name}': rank {len(dims)} is above {C.RM_MAX_RANK}")
        self._drop_sessions()
        arr = (ctypes.c_int64 * max(len(dims), 1))(*dims)
        _call(_lib.rm_model_set_input_shape, self._handle(), _b(name), len(dims), arr)

    # info and check
    @_locked
    def info(self) -> dict:
        """A summary, as `remodel info --json` prints it: inputs/outputs (name, type, shape
        with ints, symbolic dim names or None), ops, params, MACs (None when a shape is
        unknown), ..."""
        inf = C.rm_info()
        try:
            _call(_lib.rm_model_info, self._handle(), ctypes.byref(inf))

            def io(v, n):
                out = []
                for i in range(n):
                    vi = v[i]
                    shape = None
                    if vi.rank >= 0:
                        shape = [vi.dims[d] if vi.dims[d] >= 0 else _s(vi.dim_names[d]) for d in range(vi.rank)]
                    out.append({"name": _s(vi.name), "type": _lib.rm_dtype_name(vi.dtype).decode(), "shape": shape})
                return out
            return {
                "file": self.path,
                "file_bytes": inf.file_bytes,
                "ir_version": inf.ir_version,
                "producer_name": _s(inf.producer_name),
                "producer_version": _s(inf.producer_version),
                "opsets": [{"domain": _s(inf.opsets[i].domain), "version": inf.opsets[i].version}
                           for i in range(inf.n_opsets)],
                "inputs": io(inf.inputs, inf.n_inputs),
                "outputs": io(inf.outputs, inf.n_outputs),
                "nodes": inf.n_nodes,
                "ops": {_s(inf.ops[i].op): inf.ops[i].count for i in range(inf.n_ops)},
                "initializers": inf.n_initializers,
                "params": inf.params,
                "param_bytes": inf.param_bytes,
                "macs": None if inf.macs < 0 else inf.macs,
            }
        finally:
            _lib.rm_info_free(ctypes.byref(inf))

    @_locked
    def check(self) -> List[Finding]:
        """Check the model at least as strictly as onnx's checker (full_check): the
        findings, problems (kind "problem") and warnings; an empty list when clean."""
        f = C.rm_findings()
        try:
            _call(_lib.rm_model_check, self._handle(), ctypes.byref(f))
            return _findings(f)
        finally:
            _lib.rm_findings_free(ctypes.byref(f))

    # modules
    def _n_modules(self) -> int:
        n = ctypes.c_size_t()
        _call(_lib.rm_model_modules, self._handle(), ctypes.byref(n))
        return n.value

    def _find(self, path: str) -> int:
        i = ctypes.c_size_t()
        _call(_lib.rm_model_find_module, self._handle(), _b(path), ctypes.byref(i))
        return i.value

    def _module(self, i: int, paths: Optional[List[str]] = None) -> Module:
        h = self._handle()
        mi = C.rm_module_info()
        if _lib.rm_model_module(h, i, ctypes.byref(mi)) != 0:
            raise Error(f"no module {i}", C.RM_ENOTFOUND)
        path_of = (lambda k: paths[k]) if paths is not None else (lambda k: self._module_path(k))
        children = []
        for k in range(mi.n_children):
            c = _lib.rm_module_child(h, i, k)
            if c == C.SIZE_MAX:
                raise Error(f"module '{_s(mi.path)}': child {k} is missing", C.RM_EFORMAT)
            children.append(path_of(c))
        nodes = []
        for k in range(mi.n_nodes):
            nm = _lib.rm_module_node(h, i, k)
            if nm is None:
                raise Error(f"module '{_s(mi.path)}': node {k} is missing", C.RM_EFORMAT)
            nodes.append(_s(nm))
        args = {}
        for k in range(mi.n_args):
            a = _lib.rm_module_arg(h, i, k)
            if not a:
                raise Error(f"module '{_s(mi.path)}': argument {k} is missing", C.RM_EFORMAT)
            a = a.contents
            v = {C.RM_ARG_INT: lambda: a.i[0], C.RM_ARG_INTS: lambda: tuple(a.i[j] for j in range(a.n)),
                 C.RM_ARG_FLOAT: lambda: a.f, C.RM_ARG_BOOL: lambda: bool(a.i[0]),
                 C.RM_ARG_STR: lambda: _s(a.s)}.get(a.type)
            if v is None:
                raise Error(f"module '{_s(mi.path)}': argument '{_s(a.key)}' has unknown type {a.type}", C.RM_EFORMAT)
            args[_s(a.key)] = v()
        params = {}
        for k in range(mi.n_params):
            role, tensor = ctypes.c_char_p(), ctypes.c_char_p()
            if _lib.rm_module_param(h, i, k, ctypes.byref(role), ctypes.byref(tensor)) != 0:
                raise Error(f"module '{_s(mi.path)}': parameter {k} is missing", C.RM_EFORMAT)
            params[_s(role.value)] = _s(tensor.value)
        parent = None if mi.parent == C.SIZE_MAX else path_of(mi.parent)
        return Module(path=_s(mi.path), name=_s(mi.name), type=_s(mi.type), type_known=mi.type_known,
                      leaf=mi.leaf, bn_folded=mi.bn_folded, depth=mi.depth, parent=parent,
                      children=tuple(children), nodes=tuple(nodes), args=args, params=params,
                      repr=self._repr_line(i), source=_s(mi.source), qualname=_s(mi.qualname))

    def _module_path(self, i: int) -> str:
        mi = C.rm_module_info()
        if _lib.rm_model_module(self._handle(), i, ctypes.byref(mi)) != 0:
            raise Error(f"no module {i}", C.RM_ENOTFOUND)
        return _s(mi.path)

    def _repr_line(self, i: int) -> str:
        n = 256
        while True:
            buf = ctypes.create_string_buffer(n)
            full = _lib.rm_module_repr(self._handle(), i, buf, n)
            if full < n:
                return _s(buf.value)
            n = full + 1

    @_locked
    def modules(self) -> List[Module]:
        """Every module in preorder, the root (path "") first."""
        n = self._n_modules()
        paths = [self._module_path(i) for i in range(n)]
        return [self._module(i, paths) for i in range(n)]

    @_locked
    def module(self, path: str) -> Module:
        """The module at path ("layer4.0.conv1" or "layer4[0].conv1"); an unknown path is
        an Error naming the nearest ones."""
        self._n_modules()
        return self._module(self._find(path))

    @_locked
    def show(self, path: Optional[str] = None, depth: Optional[int] = None) -> str:
        """print(module) as PyTorch prints it, for the whole model or the module at path;
        containers deeper than depth levels collapsed."""
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
            raise Error(f"depth must be a non-negative int or None, got {depth!r}")
        self._n_modules()
        i = self._find(path) if path is not None else 0
        err = C.rm_error()
        p = _lib.rm_model_repr(self._handle(), i, -1 if depth is None else depth, ctypes.byref(err))
        if not p:
            _raise(err, err.code or C.RM_ENOMEM)
        try:
            return _s(ctypes.string_at(p)).rstrip("\n")
        finally:
            _lib.rm_free(p)

    # edits
    @_locked
    def replace(self, path: str, spec: str, propagate: bool = False, init: str = "keep", seed: int = 0) -> List[str]:
        """Replace the Conv1d/2d/3d module at path with a spec of the same kind in PyTorch's
        syntax ("Conv2d(256, 512, 3, stride=2, padding=1, bias=False)"). propagate carries an
        out_channels change to the layers that read it; init is "keep" (old weights where
        shapes overlap), "kaiming" (PyTorch's default, from seed) or "zeros". Returns what
        changed, one line per layer."""
        inits = {"keep": C.RM_INIT_KEEP, "kaiming": C.RM_INIT_KAIMING, "zeros": C.RM_INIT_ZEROS}
        if init not in inits:
            raise Error(f"init must be 'keep', 'kaiming' or 'zeros', not {init!r}")
        o = C.rm_replace_options()
        o.init, o.seed, o.propagate = inits[init], _u64(seed, "seed"), bool(propagate)
        _call(_lib.rm_spec_check, _b(spec))
        h = self._edit_copy()
        f = C.rm_findings()
        try:
            _call(_lib.rm_replace, h, _b(path), _b(spec), ctypes.byref(o), ctypes.byref(f),
                  context=f"replace {path}")
            notes = [x.text for x in _findings(f) if x.kind == "note"]
        except BaseException:
            _lib.rm_model_free(h)
            raise
        finally:
            _lib.rm_findings_free(ctypes.byref(f))
        self._swap(h)
        return notes

    @_locked
    def prune(self, paths=None, ratio: Optional[float] = None, *, channels=None, global_: Optional[bool] = None,
              criterion: str = "l1", target_macs: Optional[float] = None, target_params: Optional[float] = None,
              ignore=(), ratio_for=None, round_to: int = 0, dry_run: bool = False, reconstruct: bool = False,
              calib_inputs=None, calib_samples: int = 0, calib_seed: int = 1, threads: int = 0) -> PruneReport:
        """Remove channels physically, with every coupled layer following.

        paths         a module path or a list of them (Conv2d, ConvTranspose2d or Linear
                      modules whose coupled channel groups are pruned); None: every
                      prunable group (global_ ranking)
        ratio         fraction of each group's channels removed, 0 < ratio < 1
        channels      or exactly these channel indices of the one named module's group
        global_       rank the channels of every prunable group together (default: when no
                      paths are given)
        criterion     "l1", "l2" (norms of the producing convs' weights), "bn-scale"
                      (|gamma|/sigma of the group's BatchNorms) or "activation" (mean
                      |activation| on the calibration data)
        target_macs   or prune globally until at most this fraction of the MACs remains
        target_params the same for parameters
        ignore        modules whose groups are left whole
        ratio_for     {path: ratio}: groups pruned by their own ratio, outside the ranking
        round_to      pruned groups keep a multiple of this many channels
        dry_run       plan only: the report says what would be pruned; the model is unchanged
        reconstruct   refit the layers that lost input channels on the calibration data
        calib_inputs  a folder of input sets, or calib_samples seeded random inputs
        """
        if isinstance(paths, str):
            paths = [paths]
        paths = list(paths) if paths is not None else []
        target = target_macs is not None or target_params is not None
        if global_ is None:
            global_ = not paths and not target
        if target and (ratio is not None or channels is not None):
            raise Error("give a target or ratio/channels, not both")
        if not target and (ratio is None) == (channels is None):
            raise Error("give exactly one of ratio and channels (or a target)")
        crit = _lib.rm_criterion_parse(_b(criterion)) if isinstance(criterion, str) else 0
        if not crit:
            raise Error(f"criterion must be 'l1', 'l2', 'bn-scale' or 'activation', not {criterion!r}")
        o = C.rm_prune_options()
        o.criterion = crit
        o.global_ = bool(global_)
        if global_ and paths:
            raise Error("global_ ranks every group; give no paths with it")
        keep = []
        for name, v in (("target_macs", target_macs), ("target_params", target_params)):
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                    raise Error(f"{name} is the fraction kept, above 0 and at most 1, not {v!r}")
                setattr(o, name, float(v))
        if isinstance(ignore, str):
            ignore = [ignore]
        if ignore:
            arr = (ctypes.c_char_p * len(ignore))(*[_b(p) for p in ignore])
            keep.append(arr)
            o.ignore, o.n_ignore = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p)), len(ignore)
        if ratio_for:
            arr = (C.rm_prune_ratio * len(ratio_for))()
            for k, (p, r) in enumerate(dict(ratio_for).items()):
                if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r < 1:
                    raise Error(f"ratio_for['{p}'] must be a number from 0 to below 1, not {r!r}")
                arr[k].path, arr[k].ratio = _b(p), float(r)
            keep.append(arr)
            o.ratio_for, o.n_ratio_for = arr, len(arr)
        if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 0:
            raise Error(f"round_to must be a number of channels, not {round_to!r}")
        o.round_to, o.dry_run, o.reconstruct = round_to, bool(dry_run), bool(reconstruct)
        if calib_inputs is not None:
            keep.append(_fs(calib_inputs))
            o.calib.inputs = keep[-1]
        o.calib.samples, o.calib.seed, o.calib.threads = int(calib_samples), _u64(calib_seed, "calib_seed"), \
            _threads(threads)
        chans = None
        if ratio is not None:
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
                raise Error(f"ratio must be a number between 0 and 1 (exclusive), not {ratio!r}")
            o.ratio = float(ratio)
        elif channels is not None:
            if global_:
                raise Error("global_ ranks channels itself; give ratio with it, not channels")
            chans = [int(c) for c in channels]
            if not chans or any(c < 0 for c in chans):
                raise Error(f"channels must be a non-empty list of channel indices, not {channels!r}")
            arr = (ctypes.c_int64 * len(chans))(*chans)
            o.channels, o.n_channels = ctypes.cast(arr, ctypes.POINTER(ctypes.c_int64)), len(chans)
        cpaths = (ctypes.c_char_p * max(len(paths), 1))(*[_b(p) for p in paths])
        h = self._edit_copy()
        rep, f = C.rm_prune_report(), C.rm_findings()
        try:
            _call(_lib.rm_prune, h, cpaths, len(paths), ctypes.byref(o), ctypes.byref(rep), ctypes.byref(f),
                  context="prune")
            groups = [PruneGroup(name=_s(g.name), producers=g.producers, before=g.before, after=g.after,
                                 prunable=g.prunable, reason=_s(g.reason) if not g.prunable or g.ignored else None,
                                 ignored=g.ignored)
                      for g in (rep.groups[i] for i in range(rep.n_groups))]
            refits = [PruneRefit(name=_s(x.name), rows=x.rows, unknowns=x.unknowns, error_before=x.error_before,
                                 error_after=x.error_after) for x in (rep.refits[i] for i in range(rep.n_refits))]
            report = PruneReport(groups=groups, params_before=rep.params_before, params_after=rep.params_after,
                                 macs_before=rep.macs_before, macs_after=rep.macs_after,
                                 notes=[x.text for x in _findings(f) if x.kind == "note"], dry_run=rep.dry_run,
                                 samples=rep.samples, refits=refits)
        except BaseException:
            _lib.rm_model_free(h)
            raise
        finally:
            _lib.rm_prune_report_free(ctypes.byref(rep))
            _lib.rm_findings_free(ctypes.byref(f))
        if dry_run:
            _lib.rm_model_free(h)  # the plan only: the model stays as it was
        else:
            self._swap(h)
        return report

    @_locked
    def fold_bn(self) -> int:
        """Fold every BatchNormalization that follows a Conv into its weight and bias;
        the number folded."""
        h = self._edit_copy()
        n = ctypes.c_int()
        f = C.rm_findings()
        try:
            _call(_lib.rm_fold_bn, h, ctypes.byref(n), ctypes.byref(f), context="fold-bn")
            _findings(f)
        except BaseException:
            _lib.rm_model_free(h)
            raise
        finally:
            _lib.rm_findings_free(ctypes.byref(f))
        self._swap(h)
        return n.value

    # inference
    def _input_types(self) -> Dict[str, int]:
        inf = C.rm_info()
        try:
            _call(_lib.rm_model_info, self._handle(), ctypes.byref(inf))
            return {_s(inf.inputs[i].name): inf.inputs[i].dtype or C.RM_DTYPE_FLOAT for i in range(inf.n_inputs)}
        finally:
            _lib.rm_info_free(ctypes.byref(inf))

    @_locked
    def session(self, inputs=None, *, threads: int = 0, fuse: bool = True, direct_conv: bool = False) -> "Session":
        """Compile the model once to run it many times (Session.run). inputs given here
        fix dynamic dims (float) or become constants (int64, e.g. a shape)."""
        return Session(self, inputs, threads=threads, fuse=fuse, direct_conv=direct_conv)

    @_locked
    def run(self, inputs=None, *, seed: int = 0, threads: int = 0, fuse: bool = True, direct_conv: bool = False,
            numpy: Optional[bool] = None) -> Dict[str, object]:
        """Run the model once: inputs is a dict name -> array (or one array for a
        one-input model); inputs not given are seeded standard-normal values (int64 ones
        zeros). Returns name -> output in the model's output order, as numpy arrays when
        numpy can be imported (numpy=False: nested lists), copies the caller owns."""
        # compiled for one run, as `remodel run` without --bench: no Winograd weight transforms
        with Session(self, inputs, threads=threads, fuse=fuse, direct_conv=direct_conv, _few_runs=True) as s:
            return s.run(seed=seed, numpy=numpy)


class Session:
    """A model compiled into oneDNN primitives and C kernels, run many times. It belongs
    to its model: an edit, set_input_shape or close of the model closes it."""

    def __init__(self, model: Model, inputs=None, *, threads: int = 0, fuse: bool = True, direct_conv: bool = False,
                 _few_runs: bool = False):
        self._h = None
        self._model = model
        with model._lock:
            types = model._input_types()
            given = _inputs_dict(inputs, list(types))
            o = C.rm_session_options()
            _lib.rm_session_options_default(ctypes.byref(o))
            o.threads, o.fuse, o.direct_conv = _threads(threads), int(bool(fuse)), int(bool(direct_conv))
            o.few_runs = int(bool(_few_runs))
            keep = []
            if given:
                tensors = (C.rm_tensor * len(given))()
                names = (ctypes.c_char_p * len(given))()
                for k, (name, value) in enumerate(given.items()):
                    t, ref = _to_tensor(value, types[name], name)
                    tensors[k], names[k] = t, _b(name)
                    keep.append(ref)
                o.n_given, o.given_names, o.given_values = len(given), names, tensors
            h = ctypes.c_void_p()
            _call(_lib.rm_session_create, ctypes.byref(h), model._handle(), ctypes.byref(o))
            self._h = h
            model._sessions.add(self)
        n = _lib.rm_session_n_inputs(h)
        self._inputs = [_s(_lib.rm_session_input_name(h, k)) for k in range(n)]
        if None in self._inputs:
            self.close()
            raise Error("the session lists an input without a name", C.RM_EFORMAT)

    def close(self) -> None:
        """Free the session. Idempotent."""
        model = getattr(self, "_model", None)
        if model is not None:
            with model._lock:  # not while another thread runs it
                self._free()

    def _free(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            _lib.rm_session_free(h)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self._free()  # unreachable: no other thread can be using it
        except Exception:  # noqa: BLE001 - nothing to report to during collection
            pass

    def _handle(self):
        if not self._h:
            raise Error("the session is closed (its model was edited or closed since it was compiled)",
                        C.RM_EUSAGE)
        return self._h

    @property
    def inputs(self) -> List[Tuple[str, str, Tuple[int, ...]]]:
        """(name, element type, dims) of every input the caller feeds."""
        out = []
        with self._model._lock:
            h = self._handle()
            for k, name in enumerate(self._inputs):
                t = C.rm_tensor()
                _lib.rm_session_input_info(h, k, ctypes.byref(t))
                out.append((name, _lib.rm_dtype_name(t.dtype).decode(), tuple(t.dims[i] for i in range(t.rank))))
        return out

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one run."""
        return _lib.rm_session_macs(self._handle())

    def run(self, inputs=None, *, seed: int = 0, numpy: Optional[bool] = None) -> Dict[str, object]:
        """Set the inputs given (dict or one array), fill those never set with seeded
        standard-normal values, run, and return every output by name (copies). An input
        set by an earlier run keeps its value."""
        as_numpy = _np is not None if numpy is None else bool(numpy)
        if as_numpy and _np is None:
            raise Error("numpy=True, but numpy cannot be imported")
        with self._model._lock:
            h = self._handle()
            types = {}
            for k, name in enumerate(self._inputs):
                t = C.rm_tensor()
                _lib.rm_session_input_info(h, k, ctypes.byref(t))
                types[name] = t.dtype
            for name, value in _inputs_dict(inputs, self._inputs).items():
                t, keep = _to_tensor(value, types[name], name)
                _call(_lib.rm_session_set_input, h, _b(name), ctypes.byref(t))
                del keep
            _lib.rm_session_random_inputs(h, _u64(seed, "seed"))
            _call(_lib.rm_session_run, h)
            out = {}
            for k in range(_lib.rm_session_n_outputs(h)):
                name = _lib.rm_session_output_name(h, k)
                if name is None:
                    raise Error(f"output {k} has no name", C.RM_EFORMAT)
                t = C.rm_tensor()
                _call(_lib.rm_session_output, h, k, ctypes.byref(t))
                out[_s(name)] = _from_tensor(t, as_numpy)
            return out

    def get(self, name: str, *, numpy: Optional[bool] = None):
        """A copy of tensor `name` as it is after the last run: an input, a constant, or
        a value no later step overwrote (compile with fuse=False to read every node's)."""
        as_numpy = _np is not None if numpy is None else bool(numpy)
        with self._model._lock:
            t = C.rm_tensor()
            _call(_lib.rm_session_get, self._handle(), _b(name), ctypes.byref(t))
            try:
                return _from_tensor(t, as_numpy and _np is not None)
            finally:
                _lib.rm_tensor_free(ctypes.byref(t))


# ---- diff --------------------------------------------------------------------------------------

def _nan_none(x: float) -> Optional[float]:
    return None if math.isnan(x) else x


def diff(a: Model, b: Model, layers: bool = False, *, atol: Optional[float] = None, rtol: float = 1e-4,
         min_cosine: float = 0.9999, min_top1: float = 1.0, samples: int = 1, seed: int = 0,
         threads: int = 0, inputs=None, save_inputs=None, report=None) -> DiffResult:
    """Run a (the reference) and b on the same inputs and compare every output (and with
    layers=True every module's output, aligned through the channel maps edits record).
    An element fails when |B - A| > atol + rtol * |A|, atol defaulting to 1e-5 * max|A|
    of each output on each sample; an output fails when an element does, when its cosine
    on a sample is below min_cosine, or when fewer than min_top1 of a classifier's rows
    agree on the top class. samples: how many input sets (sample k: seeded seed + k).
    inputs: a dict name -> array (or one array) for one sample, a list of such dicts for
    several, or a folder of input sets (remodel's or ONNX's test-data layout); inputs not
    given are seeded random. save_inputs: a folder to write every sample's inputs to, to
    replay them. report: write a self-contained HTML page of the result to this path."""
    if not isinstance(a, Model) or not isinstance(b, Model):
        raise TypeError("diff compares two remodel.Model objects")
    first, second = sorted((a, b), key=id)
    with first._lock, second._lock:
        o = C.rm_diff_options()
        _lib.rm_diff_options_default(ctypes.byref(o))
        for name, v in (("rtol", rtol), ("atol", atol)):
            if v is None and name == "atol":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise Error(f"{name} must be a non-negative number, not {v!r}")
        for name, v in (("min_cosine", min_cosine), ("min_top1", min_top1)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1 <= v <= 1:
                raise Error(f"{name} must be a number from -1 to 1, not {v!r}")
        if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 1_000_000:
            raise Error(f"samples must be an integer from 1 to 1000000, not {samples!r}")
        o.atol = -1.0 if atol is None else atol
        o.rtol, o.min_cosine, o.min_top1, o.samples = rtol, min_cosine, min_top1, samples
        o.seed, o.threads, o.layers = _u64(seed, "seed"), _threads(threads), bool(layers)
        types = a._input_types()
        keep = []
        read_sets = None
        if isinstance(inputs, (str, bytes, os.PathLike)):
            read_sets = ctypes.c_void_p()
            _call(_lib.rm_input_sets_open, ctypes.byref(read_sets), a._handle(), _fs(inputs))
            o.folder = read_sets
            given = True
        else:
            dicts = inputs if isinstance(inputs, list) else [] if inputs is None else [inputs]
            sets = (C.rm_input_set * (len(dicts) or 1))()
            for k, one in enumerate(dicts):
                d = _inputs_dict(one, list(types))
                tensors = (C.rm_tensor * (len(d) or 1))()
                names = (ctypes.c_char_p * (len(d) or 1))()
                for j, (name, value) in enumerate(d.items()):
                    t, ref = _to_tensor(value, types[name], name)
                    tensors[j], names[j] = t, _b(name)
                    keep.append(ref)
                sets[k].n, sets[k].names, sets[k].values = len(d), names, tensors
                keep += [tensors, names]
            o.n_sets, o.sets = len(dicts), sets
            given = bool(dicts)
        if save_inputs is not None:
            keep.append(_fs(save_inputs))
            o.save_inputs = keep[-1]
        r = C.rm_diff_result()
        try:
            if report is not None:  # before any work: the folder exists, no model is overwritten
                out = C.rm_output()
                _call(_lib.rm_output_check, _fs(report), ctypes.byref(out))
                for m in (a, b):
                    _call(_lib.rm_output_guard, m._handle(), ctypes.byref(out), b"report", False)
            _call(_lib.rm_diff, a._handle(), b._handle(), ctypes.byref(o), ctypes.byref(r))
            outs = [DiffOutput(name=_s(x.name), shape=tuple(x.dims[d] for d in range(x.rank)), max_abs=x.s.max_abs,
                               max_rel=x.s.max_rel, mean_abs=x.s.mean_abs, cosine=x.s.cosine, compared=x.s.n,
                               mismatched=x.s.n_fail, passed=x.s.pass_, classes=x.classes, top1=_nan_none(x.top1),
                               top5=_nan_none(x.top5), aligned=x.aligned, note=_s(x.note),
                               cosine_mean=x.s.cosine_mean, scale=x.scale, atol=x.atol)
                    for x in (r.outputs[i] for i in range(r.n_outputs))]
            lays = [DiffLayer(path=_s(x.path), type=_s(x.type), tensor=_s(x.tensor), max_abs=x.s.max_abs,
                              max_rel=x.s.max_rel, mean_abs=x.s.mean_abs, cosine=x.s.cosine, compared=x.s.n,
                              mismatched=x.s.n_fail, passed=x.s.pass_, comparable=x.comparable, aligned=x.aligned,
                              note=_s(x.note))
                    for x in (r.layers[i] for i in range(r.n_layers))]
            fd = lays[r.first_divergent] if 0 <= r.first_divergent < len(lays) else None
            if report is not None:
                ri = C.rm_report_info()
                ri.model_a = _fs(a.path or "A")
                ri.model_b = _fs(b.path or "B")
                ri.inputs = b"given" if given else f"seeded standard-normal (seed {seed})".encode()
                _call(_lib.rm_diff_write_report, ctypes.byref(r), ctypes.byref(ri), _fs(report))
            return DiffResult(passed=r.pass_, atol=None if r.atol < 0 else r.atol, rtol=r.rtol, outputs=outs,
                              layers=lays, first_divergent=fd, atol_scale=r.atol_scale, min_cosine=r.min_cosine,
                              min_top1=r.min_top1, samples=r.samples, seed=r.seed)
        finally:
            _lib.rm_diff_result_free(ctypes.byref(r))
            if read_sets is not None:
                _lib.rm_input_sets_free(read_sets)
