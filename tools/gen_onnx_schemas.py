#!/usr/bin/python3
"""Write src/graph/rm_onnx_schemas.c and .h: the ONNX operator schemas as
a C table, for `remodel check`.

usage: /usr/bin/python3 tools/gen_onnx_schemas.py [SRC_DIR]     (default: src/graph/ beside tools/)

Every fact comes from the onnx Python package (Debian's python3-onnx), which carries the
operator registry of the ONNX specification: onnx.defs.get_all_schemas_with_history()
gives each version of each operator in every domain it registers (ai.onnx, ai.onnx.ml,
ai.onnx.preview.training) with its inputs, outputs, attributes and type constraints.
Two facts the Python API does not expose are measured with onnx's own C++ checker
(onnx.onnx_cpp2py_export.checker.check_node) on probe nodes, one per schema:
  - which input/output counts below 32 the schema accepts (BatchNormalization-1..9
    takes 1 or 5 outputs, not 2..4, although its min/max say 1..5);
  - whether it accepts attributes it does not declare (LayerNormalization-17 does).
The script checks the table it writes against the same checker and stops on a
disagreement. Runs are deterministic: two runs give byte-identical files.
"""

import os
import sys

import onnx
import onnx.defs
from onnx import AttributeProto
import onnx.onnx_cpp2py_export.checker as C

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "src", "graph"))

# tensor element types of TensorProto.DataType, as the schemas spell them
ELEM = {
    "float": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
    "string": 8, "bool": 9, "float16": 10, "double": 11, "uint32": 12, "uint64": 13,
    "complex64": 14, "complex128": 15, "bfloat16": 16,
}
NON_TENSOR_BIT = 1 << 31
ANY_TYPE = 0xFFFFFFFF
DOMAINS = ["", "ai.onnx.ml", "ai.onnx.preview.training"]
OPTION = {"Single": 0, "Optional": 1, "Variadic": 2}

# How onnx's inference function sets output 0's element type where the type
# constraints alone do not tell (the spec of each operator says it; the Python API
# does not expose it): names of enum rm_onnx_out_rule in the header.
OUT_RULE = {
    "EyeLike": "DTYPE_OR_IN0", "RandomNormalLike": "DTYPE_OR_IN0",
    "RandomUniformLike": "DTYPE_OR_IN0", "Bernoulli": "DTYPE_OR_IN0",
    "HannWindow": "WINDOW", "HammingWindow": "WINDOW", "BlackmanWindow": "WINDOW",
    "RandomNormal": "DTYPE_FLOAT", "RandomUniform": "DTYPE_FLOAT",
    "Multinomial": "DTYPE_INT32", "ConstantOfShape": "CONSTANT_OF_SHAPE",
    "QuantizeLinear": "QUANTIZE", "Constant": "CONSTANT", "Cast": "CAST", "CastLike": "CAST_LIKE",
}
OUT_RULES = ["NONE", "DTYPE_OR_IN0", "WINDOW", "DTYPE_FLOAT", "DTYPE_INT32", "CONSTANT_OF_SHAPE",
             "QUANTIZE", "CONSTANT", "CAST", "CAST_LIKE"]
# The operator that replaces a deprecated one, as its deprecation note says.
REPLACED_BY = {"Upsample": "Resize", "Scatter": "ScatterElements"}
# Experimental operators of onnx before 1.5, which the registry no longer carries;
# onnx's checker accepts them without a schema.
EXPERIMENTAL = ["ATen", "Affine", "ConstantFill", "Crop", "DynamicSlice", "GRUUnit",
                "GivenTensorFill", "ImageScaler", "ParametricSoftplus", "Scale", "ScaledTanh"]


def type_mask(type_strs):
    """Bit k: tensor(elem type k) allowed; bit 31: a non-tensor type allowed."""
    if not type_strs:
        return ANY_TYPE
    m = 0
    for t in type_strs:
        if t.startswith("tensor(") and t.endswith(")"):
            m |= 1 << ELEM[t[len("tensor("):-1]]
        else:
            m |= NON_TENSOR_BIT
    return m


def attr_proto(name, t):
    """An attribute of type t with a value of the right form."""
    a = AttributeProto(name=name, type=t)
    if t == AttributeProto.FLOAT:
        a.f = 1.0
    elif t == AttributeProto.INT:
        a.i = 1
    elif t == AttributeProto.STRING:
        a.s = b"a"
    elif t == AttributeProto.TENSOR:
        a.t.CopyFrom(onnx.helper.make_tensor("t", 1, [1], [1.0]))
    elif t == AttributeProto.GRAPH:
        a.g.CopyFrom(onnx.helper.make_graph([], "g", [], []))
    elif t == AttributeProto.FLOATS:
        a.floats.extend([1.0])
    elif t == AttributeProto.INTS:
        a.ints.extend([1])
    elif t == AttributeProto.STRINGS:
        a.strings.extend([b"a"])
    elif t == AttributeProto.TENSORS:
        a.tensors.extend([onnx.helper.make_tensor("t", 1, [1], [1.0])])
    elif t == AttributeProto.GRAPHS:
        a.graphs.extend([onnx.helper.make_graph([], "g", [], [])])
    elif t == AttributeProto.SPARSE_TENSOR:
        a.sparse_tensor.values.CopyFrom(onnx.helper.make_tensor("v", 1, [1], [1.0]))
    elif t == AttributeProto.TYPE_PROTO:
        a.tp.CopyFrom(onnx.helper.make_tensor_type_proto(1, [1]))
    elif t == AttributeProto.TYPE_PROTOS:
        a.type_protos.extend([onnx.helper.make_tensor_type_proto(1, [1])])
    return a


def accepts(s, n_in, n_out, extra_attr=None):
    """Does onnx's checker accept a node of schema s with n_in inputs and n_out outputs?"""
    node = onnx.NodeProto(op_type=s.name, domain=s.domain)
    node.input.extend("i%d" % k for k in range(n_in))
    node.output.extend("o%d" % k for k in range(n_out))
    for name, a in sorted(s.attributes.items()):
        if a.required:
            node.attribute.append(attr_proto(name, int(a.type)))
    if extra_attr is not None:
        node.attribute.append(extra_attr)
    ctx = C.CheckerContext()
    ctx.ir_version = onnx.IR_VERSION
    ctx.opset_imports = {s.domain: s.since_version}
    try:
        C.check_node(node.SerializeToString(), ctx)
        return True
    except Exception:  # noqa: BLE001 - any refusal is a "no"
        return False


def count_mask(s, lo, hi, probe):
    """Bit k set when k (< 32) is an accepted count, measured by probe(k)."""
    m = 0
    for k in range(32):
        if probe(k):
            m |= 1 << k
    # beyond 31 the schema's own range is the rule; it must agree with the probes
    for k in range(32):
        if bool(m >> k & 1) and not (lo <= k <= hi):
            sys.exit("%s-%d: accepts count %d outside [%d, %d]" % (s.name, s.since_version, k, lo, hi))
    return m


def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    schemas = [s for s in onnx.defs.get_all_schemas_with_history() if s.domain in DOMAINS]
    unknown = {s.domain for s in onnx.defs.get_all_schemas_with_history()} - set(DOMAINS)
    if unknown:
        sys.exit("domains not handled: %s" % sorted(unknown))
    schemas.sort(key=lambda s: (DOMAINS.index(s.domain), s.name, s.since_version))
    missing = (set(OUT_RULE) | set(REPLACED_BY)) - {s.name for s in schemas if s.domain == ""}
    if missing:
        sys.exit("OUT_RULE/REPLACED_BY name operators onnx does not have: %s" % sorted(missing))
    if set(OUT_RULE.values()) - set(OUT_RULES):
        sys.exit("OUT_RULE uses rules not in OUT_RULES")

    max_version = {d: max(s.since_version for s in schemas if s.domain == d) for d in DOMAINS}
    # onnx.defs.onnx_opset_version() is the newest ai.onnx opset, which may bump
    # without any operator changing; take it when it is newer
    max_version[""] = max(max_version[""], onnx.defs.onnx_opset_version())

    body = []
    table = []
    for idx, s in enumerate(schemas):
        ident = "s%d" % idx
        type_ids = {}

        def params(kind, plist):
            rows = []
            for p in plist:
                tid = type_ids.setdefault(p.typeStr, len(type_ids))
                rows.append("    {%s, %d, %d, %d, 0x%08xu}," % (
                    c_str(p.name), OPTION[p.option.name], 1 if p.isHomogeneous else 0, tid,
                    type_mask(sorted(p.types))))
            if rows:
                body.append("static const struct rm_onnx_param %s_%s[] = {\n%s\n};" % (
                    ident, kind, "\n".join(rows)))
                return "%s_%s" % (ident, kind)
            return "NULL"

        ins = params("in", s.inputs)
        outs = params("out", s.outputs)
        attrs = sorted(s.attributes.items())
        if attrs:
            body.append("static const struct rm_onnx_attr %s_attr[] = {\n%s\n};" % (ident, "\n".join(
                "    {%s, %d, %d}," % (c_str(n), int(a.type), 1 if a.required else 0) for n, a in attrs)))
        attr_ref = "%s_attr" % ident if attrs else "NULL"

        if s.deprecated:
            in_mask = out_mask = 0
            unchecked = 0
        else:
            mo = max(s.min_output, 1)
            in_mask = count_mask(s, s.min_input, s.max_input, lambda k: accepts(s, k, mo))
            out_mask = count_mask(s, s.min_output, s.max_output,
                                  lambda k: (k > 0 or s.min_input > 0) and accepts(s, s.min_input, k))
            if s.min_output == 0 and s.min_input == 0:
                out_mask |= 1  # a node with neither inputs nor outputs is refused on its own
            unchecked = 1 if accepts(s, s.min_input, mo,
                                     AttributeProto(name="zz_not_an_attribute", type=2, i=1)) else 0
        checked = 1 if (s.has_type_and_shape_inference_function or s.has_function) else 0
        rule = OUT_RULE.get(s.name, "NONE") if s.domain == "" else "NONE"
        repl = REPLACED_BY.get(s.name) if s.domain == "" and s.deprecated else None
        table.append("    {%s, %d, %d, %d, %d, %d, RM_OUT_%s, %d, %d, %d, %d, 0x%08xu, 0x%08xu, %d, %d, %d, %s, %s, %s, %s}," % (
            c_str(s.name), DOMAINS.index(s.domain), s.since_version, 1 if s.deprecated else 0,
            unchecked, checked, rule, s.min_input, min(s.max_input, 2**31 - 1), s.min_output,
            min(s.max_output, 2**31 - 1), in_mask, out_mask, len(s.inputs), len(s.outputs),
            len(attrs), ins, outs, attr_ref, c_str(repl) if repl else "NULL"))

    banner = ("/* GENERATED by tools/gen_onnx_schemas.py from onnx %s (Debian python3-onnx):\n"
              " * onnx.defs.get_all_schemas_with_history(), %d operator schemas in %d domains.\n"
              " * Do not edit by hand: change the generator and run\n"
              " *     /usr/bin/python3 tools/gen_onnx_schemas.py\n"
              " * from the top of the source tree. */\n") % (onnx.__version__, len(schemas), len(DOMAINS))

    header = banner + """#ifndef RM_ONNX_SCHEMAS_H
#define RM_ONNX_SCHEMAS_H

/* The operator schemas of the ONNX specification, one entry per (domain, operator,
 * since_version), read-only data for rm_check_schema.c. */

#include <stddef.h>
#include <stdint.h>

/* Formal parameter options (OpSchema::FormalParameterOption). */
enum { RM_PARAM_SINGLE = 0, RM_PARAM_OPTIONAL = 1, RM_PARAM_VARIADIC = 2 };

/* Types a formal parameter accepts: bit k is tensor(element type k), k a
 * TensorProto.DataType; RM_TYPES_NON_TENSOR is set when a sequence, map or optional
 * type is accepted; RM_TYPES_ANY means unconstrained. */
#define RM_TYPES_NON_TENSOR 0x80000000u
#define RM_TYPES_ANY 0xFFFFFFFFu
/* Element types the table knows (TensorProto.DataType 1..RM_ONNX_MAX_ELEM_TYPE). */
#define RM_ONNX_MAX_ELEM_TYPE %d

struct rm_onnx_param {
    const char *name;
    uint8_t option;      /* RM_PARAM_* */
    uint8_t homogeneous; /* all its values (and every parameter of the same type
                          * variable) bind one type */
    uint8_t type_var;    /* parameters of one schema with equal type_var share a type
                          * string (a type variable such as T, or one fixed type) */
    uint32_t types;      /* accepted types, see above */
};

struct rm_onnx_attr {
    const char *name;
    uint8_t type;     /* AttributeProto.AttributeType */
    uint8_t required;
};

struct rm_onnx_schema {
    const char *name;
    uint8_t domain;          /* index into rm_onnx_domains */
    uint8_t since;           /* since_version */
    uint8_t deprecated;      /* the operator is removed from this version on */
    uint8_t unchecked_attrs; /* accepts attributes it does not declare */
    uint8_t type_checked;    /* onnx checks its input/output types (the schema has an
                              * inference function or a function body) */
    uint8_t out_rule;        /* enum rm_onnx_out_rule */
    int32_t min_in, max_in, min_out, max_out;
    uint32_t in_counts;      /* bit k: k inputs accepted (k < 32; above, min..max) */
    uint32_t out_counts;     /* bit k: k outputs accepted */
    uint16_t n_inputs, n_outputs, n_attrs;
    const struct rm_onnx_param *inputs;  /* formal inputs; the last may be variadic */
    const struct rm_onnx_param *outputs;
    const struct rm_onnx_attr *attrs;    /* sorted by name */
    const char *replaced_by;             /* deprecated: the operator to use instead */
};

/* How output 0's element type follows from attributes or inputs where the type
 * constraints do not tell: NONE (they tell, or it is unknown); DTYPE_OR_IN0 the
 * `dtype` attribute, else input 0's type; WINDOW `output_datatype` (float); DTYPE_FLOAT
 * `dtype` (float); DTYPE_INT32 `dtype` (int32); CONSTANT_OF_SHAPE the `value` tensor's
 * type (float); QUANTIZE input 2's type (uint8 without it); CONSTANT the value
 * attribute's type; CAST `to`; CAST_LIKE input 1's type. */
enum rm_onnx_out_rule { %s };

/* Experimental operators of onnx before 1.5 (no schema; accepted as they are). */
#define RM_ONNX_N_EXPERIMENTAL %d
extern const char *const rm_onnx_experimental[RM_ONNX_N_EXPERIMENTAL];

/* Domains: 0 is the default ONNX domain "" (also written "ai.onnx"). */
#define RM_ONNX_N_DOMAINS %d
extern const char *const rm_onnx_domains[RM_ONNX_N_DOMAINS];
/* Newest opset version of each domain the table knows. */
extern const int rm_onnx_domain_max_version[RM_ONNX_N_DOMAINS];
/* The onnx release the table was generated from, and its IR_VERSION. */
extern const char rm_onnx_schemas_source[];
extern const int rm_onnx_ir_version;

/* Every schema, sorted by domain index, name (strcmp order), since_version. */
extern const struct rm_onnx_schema rm_onnx_schemas[];
extern const size_t rm_onnx_n_schemas;

#endif
""" % (max(ELEM.values()), ", ".join("RM_OUT_" + r for r in OUT_RULES), len(EXPERIMENTAL), len(DOMAINS))

    src = banner + '#include "rm_onnx_schemas.h"\n\n#include <stddef.h>\n\n'
    src += "const char *const rm_onnx_domains[RM_ONNX_N_DOMAINS] = {%s};\n" % ", ".join(c_str(d) for d in DOMAINS)
    src += "const int rm_onnx_domain_max_version[RM_ONNX_N_DOMAINS] = {%s};\n" % ", ".join(
        str(max_version[d]) for d in DOMAINS)
    src += "const char *const rm_onnx_experimental[RM_ONNX_N_EXPERIMENTAL] = {%s};\n" % ", ".join(
        c_str(e) for e in EXPERIMENTAL)
    src += 'const char rm_onnx_schemas_source[] = "onnx %s";\n' % onnx.__version__
    src += "const int rm_onnx_ir_version = %d;\n\n" % onnx.IR_VERSION
    src += "\n".join(body) + "\n\n"
    src += ("/* name, domain, since, deprecated, unchecked_attrs, type_checked, out_rule, min_in,\n"
            " * max_in, min_out, max_out, in_counts, out_counts, n_inputs, n_outputs, n_attrs, ... */\n")
    src += "const struct rm_onnx_schema rm_onnx_schemas[] = {\n" + "\n".join(table) + "\n};\n"
    src += "const size_t rm_onnx_n_schemas = sizeof rm_onnx_schemas / sizeof rm_onnx_schemas[0];\n"

    # strcmp order for the C binary search (Python sorts str by code point, the same for ASCII)
    names = [(DOMAINS.index(s.domain), s.name.encode(), s.since_version) for s in schemas]
    if names != sorted(names):
        sys.exit("schemas not in strcmp order")

    for name, text in (("rm_onnx_schemas.h", header), ("rm_onnx_schemas.c", src)):
        path = os.path.join(OUT, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    print("wrote %d schemas (%s) to %s" % (len(schemas), ", ".join(
        "%s %d" % (d or "ai.onnx", max_version[d]) for d in DOMAINS), OUT))


if __name__ == "__main__":
    main()
