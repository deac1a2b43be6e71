"""ctypes declarations of include/remodel.h, and finding libremodel.so.0.

Only functions the header marks RM_API are declared; every struct mirrors the header
field by field (tests/test_python.py compares sizes and offsets with the C compiler's).
"""

import ctypes
import os
from ctypes import (POINTER, Structure, c_bool, c_char, c_char_p, c_double, c_int, c_int32, c_int64,
                    c_size_t, c_uint64, c_void_p)

SONAME = "libremodel.so.0"
ABI_MAJOR = 0  # the library's major version this binding is written for
RM_MAX_RANK = 8
RM_ERROR_MSG_MAX = 1024
SIZE_MAX = ctypes.c_size_t(-1).value

# error codes (RM_ERRNO_MAP)
RM_OK, RM_EIO, RM_EFORMAT, RM_EUSAGE, RM_ENOMEM, RM_EUNSUPPORTED, RM_ENOTFOUND, RM_EEDIT = 0, -1, -2, -3, -4, -5, -6, -7
# enum rm_fix
RM_FIX_NONE, RM_FIX_PROPAGATE, RM_FIX_GLOBAL, RM_FIX_EXTERNAL_DATA, RM_FIX_INPUT_SHAPE = range(5)
# enum rm_dtype
RM_DTYPE_FLOAT, RM_DTYPE_UINT8, RM_DTYPE_INT8, RM_DTYPE_INT32, RM_DTYPE_INT64, RM_DTYPE_BOOL, RM_DTYPE_DOUBLE = \
    1, 2, 3, 6, 7, 9, 11
# enum rm_finding_kind
RM_FINDING_PROBLEM, RM_FINDING_WARNING, RM_FINDING_NOTE = range(3)
# enum rm_arg_type
RM_ARG_INT, RM_ARG_INTS, RM_ARG_FLOAT, RM_ARG_BOOL, RM_ARG_STR = range(5)
# enum rm_init
RM_INIT_KEEP, RM_INIT_KAIMING, RM_INIT_ZEROS = range(3)


class rm_error(Structure):
    _fields_ = [("code", c_int), ("fix", c_int), ("msg", c_char * RM_ERROR_MSG_MAX)]


class rm_tensor(Structure):
    _fields_ = [("dtype", c_int32), ("rank", c_int), ("dims", c_int64 * RM_MAX_RANK), ("numel", c_int64),
                ("data", c_void_p), ("owned", c_int)]


class rm_load_options(Structure):
    _fields_ = [("max_memory", c_uint64)]


class rm_save_options(Structure):
    _fields_ = [("external_data", c_char_p), ("external_threshold", c_uint64)]


class rm_value_info(Structure):
    _fields_ = [("name", c_char_p), ("dtype", c_int32), ("rank", c_int), ("dims", c_int64 * RM_MAX_RANK),
                ("dim_names", c_char_p * RM_MAX_RANK)]


class rm_opset(Structure):
    _fields_ = [("domain", c_char_p), ("version", c_int64)]


class rm_op_count(Structure):
    _fields_ = [("op", c_char_p), ("count", c_int)]


class rm_info(Structure):
    _fields_ = [("file_bytes", c_uint64), ("ir_version", c_int64), ("producer_name", c_char_p),
                ("producer_version", c_char_p), ("n_opsets", c_size_t), ("opsets", POINTER(rm_opset)),
                ("n_inputs", c_size_t), ("inputs", POINTER(rm_value_info)), ("n_outputs", c_size_t),
                ("outputs", POINTER(rm_value_info)), ("n_nodes", c_size_t), ("n_ops", c_size_t),
                ("ops", POINTER(rm_op_count)), ("n_initializers", c_size_t), ("params", c_int64),
                ("param_bytes", c_uint64), ("macs", c_int64)]


class rm_finding(Structure):
    _fields_ = [("kind", c_int), ("node", c_int), ("text", c_char_p)]


class rm_findings(Structure):
    _fields_ = [("n", c_size_t), ("cap", c_size_t), ("v", POINTER(rm_finding)), ("oom", c_int)]


class rm_arg(Structure):
    _fields_ = [("key", c_char_p), ("type", c_int), ("n", c_int), ("i", c_int64 * 3), ("f", c_double),
                ("s", c_char_p), ("positional", c_bool), ("in_repr", c_bool), ("scalar_repr", c_bool)]


class rm_module_info(Structure):
    _fields_ = [("path", c_char_p), ("name", c_char_p), ("type", c_char_p), ("type_known", c_bool),
                ("leaf", c_bool), ("bn_folded", c_bool), ("depth", c_int), ("parent", c_size_t),
                ("n_children", c_size_t), ("n_nodes", c_size_t), ("n_args", c_size_t), ("n_params", c_size_t),
                ("source", c_char_p), ("qualname", c_char_p)]


class rm_replace_options(Structure):
    _fields_ = [("init", c_int), ("seed", c_uint64), ("propagate", c_bool)]


class rm_calib_options(Structure):
    _fields_ = [("inputs", c_char_p), ("samples", c_int), ("seed", c_uint64), ("threads", c_int)]


class rm_prune_ratio(Structure):
    _fields_ = [("path", c_char_p), ("ratio", c_double)]


class rm_prune_options(Structure):
    _fields_ = [("ratio", c_double), ("channels", POINTER(c_int64)), ("n_channels", c_size_t),
                ("criterion", c_int), ("global_", c_bool), ("target_macs", c_double), ("target_params", c_double),
                ("ignore", POINTER(c_char_p)), ("n_ignore", c_size_t), ("ratio_for", POINTER(rm_prune_ratio)),
                ("n_ratio_for", c_size_t), ("round_to", c_int64), ("dry_run", c_bool), ("reconstruct", c_bool),
                ("ridge", c_double), ("max_rows", c_int64), ("calib", rm_calib_options)]


class rm_prune_group(Structure):
    _fields_ = [("name", c_char * 256), ("producers", c_int), ("before", c_int64), ("after", c_int64),
                ("prunable", c_bool), ("reason", c_char * 200), ("ignored", c_bool),
                ("considered", c_bool)]


class rm_prune_refit(Structure):
    _fields_ = [("name", c_char * 256), ("rows", c_int64), ("unknowns", c_int64), ("error_before", c_double),
                ("error_after", c_double)]


class rm_prune_report(Structure):
    _fields_ = [("n_groups", c_size_t), ("groups", POINTER(rm_prune_group)), ("params_before", c_int64),
                ("params_after", c_int64), ("macs_before", c_int64), ("macs_after", c_int64), ("dry_run", c_bool),
                ("samples", c_int), ("n_refits", c_size_t), ("refits", POINTER(rm_prune_refit))]


class rm_session_options(Structure):
    _fields_ = [("threads", c_int), ("fuse", c_int), ("direct_conv", c_int), ("max_memory", c_uint64), ("n_given", c_int),
                ("given_names", POINTER(c_char_p)), ("given_values", POINTER(rm_tensor)), ("few_runs", c_int)]


class rm_input_set(Structure):
    _fields_ = [("n", c_int), ("names", POINTER(c_char_p)), ("values", POINTER(rm_tensor))]


class rm_diff_options(Structure):
    _fields_ = [("atol", c_double), ("atol_scale", c_double), ("rtol", c_double), ("min_cosine", c_double),
                ("min_top1", c_double), ("samples", c_int), ("seed", c_uint64), ("n_sets", c_size_t),
                ("sets", POINTER(rm_input_set)), ("folder", c_void_p), ("save_inputs", c_char_p), ("threads", c_int),
                ("layers", c_bool)]


class rm_diff_stats(Structure):
    _fields_ = [("max_abs", c_double), ("max_rel", c_double), ("mean_abs", c_double), ("cosine", c_double),
                ("cosine_mean", c_double), ("n", c_int64), ("n_fail", c_int64), ("pass_", c_bool)]


class rm_diff_output(Structure):
    _fields_ = [("name", c_char_p), ("rank", c_int), ("dims", c_int64 * RM_MAX_RANK), ("s", rm_diff_stats),
                ("scale", c_double), ("atol", c_double), ("classes", c_int64), ("top1", c_double),
                ("top5", c_double), ("aligned", c_bool), ("note", c_char_p), ("n_top", c_int),
                ("top_a", c_int64 * 5), ("top_b", c_int64 * 5), ("top_va", c_double * 5), ("top_vb", c_double * 5)]


class rm_diff_layer(Structure):
    _fields_ = [("path", c_char_p), ("type", c_char_p), ("tensor", c_char_p), ("s", rm_diff_stats),
                ("comparable", c_bool), ("aligned", c_bool), ("note", c_char_p), ("rank_a", c_int),
                ("rank_b", c_int), ("dims_a", c_int64 * RM_MAX_RANK), ("dims_b", c_int64 * RM_MAX_RANK)]


class rm_diff_channels(Structure):
    _fields_ = [("layer", c_int), ("sample", c_int), ("n", c_int64), ("max_abs", POINTER(c_double)),
                ("scale", POINTER(c_double))]


class rm_diff_input(Structure):
    _fields_ = [("name", c_char_p), ("dtype", c_int32), ("rank", c_int), ("dims", c_int64 * RM_MAX_RANK)]


class rm_diff_result(Structure):
    _fields_ = [("pass_", c_bool), ("atol", c_double), ("atol_scale", c_double), ("rtol", c_double),
                ("min_cosine", c_double), ("min_top1", c_double), ("samples", c_int), ("seed", c_uint64),
                ("n_outputs", c_size_t), ("outputs", POINTER(rm_diff_output)), ("n_layers", c_size_t),
                ("layers", POINTER(rm_diff_layer)), ("first_divergent", c_int), ("channels", rm_diff_channels),
                ("history_a", c_char_p), ("history_b", c_char_p), ("n_inputs", c_size_t),
                ("inputs", POINTER(rm_diff_input))]


class rm_report_info(Structure):
    _fields_ = [("model_a", c_char_p), ("model_b", c_char_p), ("inputs", c_char_p)]


class rm_file_id(Structure):
    _fields_ = [("dev", c_uint64), ("ino", c_uint64)]


class rm_output(Structure):
    _fields_ = [("path", c_char * 4096), ("dir", c_char * 4096), ("name", c_char * 256), ("dir_id", rm_file_id),
                ("exists", c_int), ("id", rm_file_id)]


# The structs test_python.py holds to the C compiler's layout (sizeof and offsetof).
STRUCTS = [rm_error, rm_tensor, rm_load_options, rm_save_options, rm_value_info, rm_opset, rm_op_count,
           rm_info, rm_finding, rm_findings, rm_arg, rm_module_info, rm_replace_options, rm_calib_options,
           rm_prune_ratio, rm_prune_options, rm_prune_group, rm_prune_refit, rm_prune_report, rm_session_options, rm_input_set, rm_diff_options,
           rm_diff_stats, rm_diff_output, rm_diff_layer, rm_diff_channels, rm_diff_input, rm_diff_result, rm_report_info,
           rm_file_id, rm_output]

_M = c_void_p  # rm_model *
_S = c_void_p  # rm_session *
_E = POINTER(rm_error)

# name: (restype, argtypes)
_FUNCS = {
    "rm_version": (c_char_p, []),
    "rm_err_name": (c_char_p, [c_int]),
    "rm_strerror": (c_char_p, [c_int]),
    "rm_error_clear": (None, [_E]),
    "rm_dtype_name": (c_char_p, [c_int32]),
    "rm_tensor_free": (None, [POINTER(rm_tensor)]),
    "rm_model_load": (c_int, [POINTER(_M), c_char_p, POINTER(rm_load_options), _E]),
    "rm_model_load_buffer": (c_int, [POINTER(_M), c_void_p, c_size_t, c_char_p, POINTER(rm_load_options), _E]),
    "rm_model_clone": (c_int, [POINTER(_M), _M, _E]),
    "rm_model_free": (None, [_M]),
    "rm_model_save": (c_int, [_M, c_char_p, POINTER(rm_save_options), _E]),
    "rm_model_path": (c_char_p, [_M]),
    "rm_model_set_input_shape": (c_int, [_M, c_char_p, c_int, POINTER(c_int64), _E]),
    "rm_model_check_inputs": (c_int, [_M, POINTER(c_int), _E]),
    "rm_model_rewrite_input_shape": (c_int, [_M, c_char_p, c_int, POINTER(c_int64), _E]),
    "rm_model_history": (c_char_p, [_M]),
    "rm_input_sets_open": (c_int, [POINTER(c_void_p), _M, c_char_p, _E]),
    "rm_input_sets_free": (None, [c_void_p]),
    "rm_input_sets_count": (c_size_t, [c_void_p]),
    "rm_model_info": (c_int, [_M, POINTER(rm_info), _E]),
    "rm_info_free": (None, [POINTER(rm_info)]),
    "rm_findings_free": (None, [POINTER(rm_findings)]),
    "rm_model_check": (c_int, [_M, POINTER(rm_findings), _E]),
    "rm_model_modules": (c_int, [_M, POINTER(c_size_t), _E]),
    "rm_model_module": (c_int, [_M, c_size_t, POINTER(rm_module_info)]),
    "rm_model_find_module": (c_int, [_M, c_char_p, POINTER(c_size_t), _E]),
    "rm_module_child": (c_size_t, [_M, c_size_t, c_size_t]),
    "rm_module_node": (c_char_p, [_M, c_size_t, c_size_t]),
    "rm_module_arg": (POINTER(rm_arg), [_M, c_size_t, c_size_t]),
    "rm_module_param": (c_int, [_M, c_size_t, c_size_t, POINTER(c_char_p), POINTER(c_char_p)]),
    "rm_module_repr": (c_size_t, [_M, c_size_t, c_void_p, c_size_t]),
    "rm_model_repr": (c_void_p, [_M, c_size_t, c_int, _E]),  # char *, released with rm_free
    "rm_model_n_unplaced": (c_size_t, [_M]),
    "rm_model_unplaced": (c_int, [_M, c_size_t, POINTER(c_char_p), POINTER(c_char_p)]),
    "rm_model_scoped": (c_bool, [_M]),
    "rm_spec_check": (c_int, [c_char_p, _E]),
    "rm_replace": (c_int, [_M, c_char_p, c_char_p, POINTER(rm_replace_options), POINTER(rm_findings), _E]),
    "rm_prune": (c_int, [_M, POINTER(c_char_p), c_size_t, POINTER(rm_prune_options), POINTER(rm_prune_report),
                         POINTER(rm_findings), _E]),
    "rm_prune_report_free": (None, [POINTER(rm_prune_report)]),
    "rm_criterion_parse": (c_int, [c_char_p]),
    "rm_fold_bn": (c_int, [_M, POINTER(c_int), POINTER(rm_findings), _E]),
    "rm_session_options_default": (None, [POINTER(rm_session_options)]),
    "rm_session_create": (c_int, [POINTER(_S), _M, POINTER(rm_session_options), _E]),
    "rm_session_free": (None, [_S]),
    "rm_session_n_inputs": (c_int, [_S]),
    "rm_session_input_name": (c_char_p, [_S, c_int]),
    "rm_session_input_info": (None, [_S, c_int, POINTER(rm_tensor)]),
    "rm_session_set_input": (c_int, [_S, c_char_p, POINTER(rm_tensor), _E]),
    "rm_session_random_inputs": (None, [_S, c_uint64]),
    "rm_session_reset_inputs": (None, [_S]),
    "rm_session_run": (c_int, [_S, _E]),
    "rm_session_get": (c_int, [_S, c_char_p, POINTER(rm_tensor), _E]),
    "rm_session_n_outputs": (c_int, [_S]),
    "rm_session_output_name": (c_char_p, [_S, c_int]),
    "rm_session_output": (c_int, [_S, c_int, POINTER(rm_tensor), _E]),
    "rm_session_macs": (c_int64, [_S]),
    "rm_diff_options_default": (None, [POINTER(rm_diff_options)]),
    "rm_diff": (c_int, [_M, _M, POINTER(rm_diff_options), POINTER(rm_diff_result), _E]),
    "rm_diff_result_free": (None, [POINTER(rm_diff_result)]),
    "rm_diff_write_report": (c_int, [POINTER(rm_diff_result), POINTER(rm_report_info), c_char_p, _E]),
    "rm_output_check": (c_int, [c_char_p, POINTER(rm_output), _E]),
    "rm_output_guard": (c_int, [_M, POINTER(rm_output), c_char_p, c_bool, _E]),
    "rm_free": (None, [c_void_p]),
}



def _candidates():
    """Where libremodel.so.0 may be, in order, each with how it was found."""
    env = os.environ.get("REMODEL_LIBRARY")
    if env:
        # an explicit choice is the only one: a wrong path must not fall back silently
        yield (os.path.join(env, SONAME) if os.path.isdir(env) else env), "REMODEL_LIBRARY"
        return
    try:
        from . import _config  # written by meson at install time
    except ImportError:
        _config = None
    if _config is not None:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # the library beside this package's install prefix, also when the tree was
        # installed into a DESTDIR or moved as a whole
        rel = os.path.relpath(_config.LIBDIR, _config.PYTHONDIR)
        yield os.path.normpath(os.path.join(here, rel, SONAME)), "beside the package"
        yield os.path.join(_config.LIBDIR, SONAME), "the install libdir"
    yield SONAME, "the dynamic loader's search path"


def load_library():
    tried = []
    for path, how in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(f"{path} ({how}): no such file")
            if how == "REMODEL_LIBRARY":
                break
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({how}): {e}")
            if how == "REMODEL_LIBRARY":
                break
            continue
        missing = [name for name in _FUNCS if not hasattr(lib, name)]
        if missing:
            raise ImportError(f"remodel: {path} lacks {', '.join(missing)}: a libremodel older than this "
                              f"binding; install a matching one or set REMODEL_LIBRARY")
        for name, (res, args) in _FUNCS.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        version = lib.rm_version().decode()
        if version.split(".")[0] != str(ABI_MAJOR):
            raise ImportError(f"remodel: {path} is libremodel {version}; this binding needs {ABI_MAJOR}.x")
        return lib, path
    raise ImportError("remodel: cannot load libremodel.so.0: " + "; ".join(tried) +
                      " (install remodel with meson install, or set REMODEL_LIBRARY to the library's path)")
