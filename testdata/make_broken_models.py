#!/usr/bin/python3
"""Write testdata/broken/: small ONNX models that break one rule each (and a few valid
models that look odd), with the verdict of onnx's own checker for every one of them,
the test corpus of `remodel check` (tests/test_check.py).

usage: /usr/bin/python3 testdata/make_broken_models.py

The oracle is onnx.checker.check_model(model, full_check=True) from Debian's
python3-onnx: its verdict and first message line are recorded per model in
broken/manifest.json, never remodel's. The script also records the oracle's verdict
on every model remodel must judge the same way: testdata/*.onnx, testdata/edits/,
testdata/torchvision/ and the model.onnx of libonnx-testdata's node and
pytorch-converted sets, in broken/oracle_verdicts.tsv.

Where remodel deliberately disagrees with the oracle the case says so and why
("deviation"): a few structural rules of the ONNX IR that onnx 1.12's checker does
not enforce (remodel is stricter), and models valid under newer ONNX releases
that onnx 1.12 refuses only for being newer (remodel warns, and the test checks
that onnxruntime 1.30 loads them). Runs are deterministic: two runs give
byte-identical files.
"""

import glob
import json
import os
import sys

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "broken")
CONFORMANCE = "/usr/share/libonnx-testdata/data"

F = TensorProto.FLOAT
CASES = []  # (name, category, model, mention, deviation)


def case(name, category, mention=None, deviation=None):
    """Register the model the decorated function returns. mention: a node or tensor
    name a finding must contain. deviation: None, or ("stricter"|"newer", why)."""
    def wrap(fn):
        CASES.append((name, category, fn(), mention, deviation))
        return fn
    return wrap


def vi(name, elem=F, shape=(1, 3, 8, 8)):
    return helper.make_tensor_value_info(name, elem, None if shape is None else list(shape))


def init(name, shape, dtype=np.float32, fill=None):
    n = int(np.prod(shape)) if shape else 1
    a = (np.arange(n, dtype=np.float64) % 7 * 0.1 if fill is None else np.full(n, fill)).astype(dtype)
    return numpy_helper.from_array(a.reshape(shape), name)


def model(nodes, inputs=None, outputs=None, inits=(), opset=13, ir=7, more_opsets=(), value_info=(),
          name="g"):
    g = helper.make_graph(nodes, name, list(inputs if inputs is not None else [vi("x")]),
                          list(outputs if outputs is not None else [vi("y", shape=("n", "c", "h", "w"))]),
                          list(inits), value_info=list(value_info))
    imports = ([helper.make_opsetid("", opset)] if opset is not None else []) + \
        [helper.make_opsetid(d, v) for d, v in more_opsets]
    m = helper.make_model(g, opset_imports=imports, ir_version=ir)
    return m


def conv_model(conv_kwargs=None, conv_inputs=("x", "w", "b"), inits=None, **kw):
    """x [1,3,8,8] -> Conv(w [4,3,3,3], b [4], pads 1) -> Relu -> y [1,4,8,8]"""
    nodes = [helper.make_node("Conv", list(conv_inputs), ["c"], name="conv1",
                              **(conv_kwargs if conv_kwargs is not None else {"pads": [1, 1, 1, 1]})),
             helper.make_node("Relu", ["c"], ["y"], name="relu1")]
    if inits is None:
        inits = [init("w", (4, 3, 3, 3)), init("b", (4,))]
    kw.setdefault("outputs", [vi("y", shape=(1, 4, 8, 8))])
    return model(nodes, inits=inits, **kw)


def relu_model(**attrs):
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1", **attrs)])


def raw_attr(node, **fields):
    """Append an AttributeProto built field by field (type included or not)."""
    a = node.attribute.add()
    for k, v in fields.items():
        if k in ("ints", "floats", "strings"):
            getattr(a, k).extend(v)
        elif k == "t":
            a.t.CopyFrom(v)
        else:
            setattr(a, k, v)
    return node


def tensor(name, dtype, dims, **fields):
    t = TensorProto(name=name)
    if dtype is not None:
        t.data_type = dtype
    t.dims.extend(dims)
    for k, v in fields.items():
        if k == "raw_data":
            t.raw_data = v
        else:
            getattr(t, k).extend(v)
    return t


def add_model(extra_init):
    """y = x + t, t an initializer of shape [1] (for tensor-form cases)."""
    return model([helper.make_node("Add", ["x", extra_init.name], ["y"], name="add1")],
                 inits=[extra_init])


# ---- attributes --------------------------------------------------------------------

@case("relu_alpha", "attribute", "relu1")
def _():
    return relu_model(alpha=0.1)


@case("conv_float_strides", "attribute", "conv1")
def _():
    return conv_model({"pads": [1, 1, 1, 1], "strides": [1.0, 1.0]})


@case("conv_int_strides", "attribute", "conv1")
def _():
    return conv_model({"pads": [1, 1, 1, 1], "strides": 1})


@case("conv_empty_strides", "attribute", "conv1")
def _():
    m = conv_model()
    raw_attr(m.graph.node[0], name="strides", type=AttributeProto.INTS)
    return m


@case("gemm_int_alpha", "attribute", "fc")
def _():
    return model([helper.make_node("Gemm", ["x2", "w"], ["y"], name="fc", alpha=1)],
                 inputs=[vi("x2", shape=(1, 4))], outputs=[vi("y", shape=(1, 2))],
                 inits=[init("w", (4, 2))])


@case("concat_missing_axis", "attribute", "cat")
def _():
    return model([helper.make_node("Concat", ["x", "x"], ["y"], name="cat")])


@case("cast_missing_to", "attribute", "cast")
def _():
    return model([helper.make_node("Cast", ["x"], ["y"], name="cast")])


@case("duplicate_attribute", "attribute", "lrelu")
def _():
    n = helper.make_node("LeakyRelu", ["x"], ["y"], name="lrelu", alpha=0.1)
    raw_attr(n, name="alpha", type=AttributeProto.FLOAT, f=0.2)
    return model([n])


@case("attribute_without_type", "attribute", "lrelu")
def _():
    return model([raw_attr(helper.make_node("LeakyRelu", ["x"], ["y"], name="lrelu"), name="alpha", f=0.1)])


@case("attribute_type_field_mismatch", "attribute", "lrelu")
def _():
    return model([raw_attr(helper.make_node("LeakyRelu", ["x"], ["y"], name="lrelu"),
                           name="alpha", type=AttributeProto.INT, f=0.1)])


@case("attribute_two_values", "attribute", "lrelu")
def _():
    return model([raw_attr(helper.make_node("LeakyRelu", ["x"], ["y"], name="lrelu"),
                           name="alpha", type=AttributeProto.FLOAT, f=0.1, i=2)])


@case("attribute_without_name", "attribute", "lrelu")
def _():
    return model([raw_attr(helper.make_node("LeakyRelu", ["x"], ["y"], name="lrelu"),
                           type=AttributeProto.FLOAT, f=0.1)])


@case("constant_tensor_attr_empty", "attribute", "const")
def _():
    n = raw_attr(helper.make_node("Constant", [], ["k"], name="const"), name="value", type=AttributeProto.TENSOR)
    return model([n, helper.make_node("Add", ["x", "k"], ["y"], name="add1")])


@case("constant_two_values", "attribute", "const")
def _():
    return model([helper.make_node("Constant", [], ["k"], name="const", value_float=1.0, value_int=1),
                  helper.make_node("Add", ["x", "k"], ["y"], name="add1")])


@case("constant_no_value", "attribute", "const")
def _():
    return model([helper.make_node("Constant", [], ["k"], name="const"),
                  helper.make_node("Add", ["x", "k"], ["y"], name="add1")])


@case("batchnorm_spatial_removed", "attribute", "bn")
def _():  # BatchNormalization lost `spatial` in opset 9
    return model([helper.make_node("BatchNormalization", ["x", "s", "bias", "mean", "var"], ["y"],
                                   name="bn", spatial=1)],
                 inits=[init(n, (3,), fill=1.0) for n in ("s", "bias", "mean", "var")])


@case("resize_attribute_too_new", "attribute", "resize")
def _():  # coordinate_transformation_mode arrived with Resize-11
    return model([helper.make_node("Resize", ["x", "scales"], ["y"], name="resize",
                                   coordinate_transformation_mode="asymmetric")],
                 inits=[init("scales", (4,), fill=1.0)], opset=10)


# ---- operators and opsets ------------------------------------------------------------

@case("unknown_op", "opset", "foo")
def _():
    return model([helper.make_node("Foo", ["x"], ["y"], name="foo")])


@case("op_lowercase", "opset", "relu1")
def _():
    return model([helper.make_node("relu", ["x"], ["y"], name="relu1")])


@case("op_newer_than_import_hardswish", "opset", "hs")
def _():  # HardSwish-14
    return model([helper.make_node("HardSwish", ["x"], ["y"], name="hs")], opset=13)


@case("op_newer_than_import_layernorm", "opset", "ln")
def _():  # LayerNormalization-17
    return model([helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln")],
                 inits=[init("s", (8,), fill=1.0)], opset=13)


@case("op_removed_upsample", "opset", "up")
def _():  # deprecated from opset 10
    return model([helper.make_node("Upsample", ["x", "scales"], ["y"], name="up")],
                 inits=[init("scales", (4,), fill=1.0)], opset=10)


@case("op_removed_scatter", "opset", "sc")
def _():  # deprecated from opset 11 (ScatterElements)
    return model([helper.make_node("Scatter", ["x", "idx", "x"], ["y"], name="sc")],
                 inits=[init("idx", (1, 3, 8, 8), np.int64, 0)], opset=11)


@case("custom_domain_not_imported", "opset", "foo")
def _():
    return model([helper.make_node("Foo", ["x"], ["y"], name="foo", domain="com.example")])


@case("default_domain_not_imported", "opset", "relu1")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], opset=None,
                 more_opsets=[("ai.onnx.ml", 3)])


@case("domain_written_ai_onnx", "opset", "relu1")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1", domain="ai.onnx")],
                 more_opsets=[("ai.onnx", 13)])


@case("ml_unknown_op", "opset", "foo")
def _():
    return model([helper.make_node("Foo", ["x"], ["y"], name="foo", domain="ai.onnx.ml")],
                 more_opsets=[("ai.onnx.ml", 3)])


@case("opset_version_zero", "opset", "relu1")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], opset=0)


# ---- input and output counts ------------------------------------------------------

@case("conv_extra_input", "count", "conv1")
def _():
    return conv_model(conv_inputs=("x", "w", "b", "b"))


@case("conv_missing_weight", "count", "conv1")
def _():
    return conv_model(conv_inputs=("x",))


@case("conv_weight_empty_name", "count", "conv1")
def _():
    return conv_model(conv_inputs=("x", "", "b"))


@case("relu_two_outputs", "count", "relu1")
def _():
    return model([helper.make_node("Relu", ["x"], ["y", "z"], name="relu1")])


@case("relu_output_empty_name", "count", "relu0")
def _():
    return model([helper.make_node("Relu", ["x"], [""], name="relu0"),
                  helper.make_node("Relu", ["x"], ["y"], name="relu1")])


@case("concat_no_inputs", "count", "cat")
def _():
    return model([helper.make_node("Concat", [], ["y"], name="cat", axis=1)])


@case("dropout_three_outputs", "count", "drop")
def _():
    return model([helper.make_node("Dropout", ["x"], ["y", "m", "z"], name="drop")])


@case("batchnorm_two_outputs", "count", "bn")
def _():  # BatchNormalization-15 has 1 or 3 outputs
    return model([helper.make_node("BatchNormalization", ["x", "s", "bias", "mean", "var"], ["y", "rm"],
                                   name="bn")],
                 inits=[init(n, (3,), fill=1.0) for n in ("s", "bias", "mean", "var")], opset=15)


@case("node_without_inputs_or_outputs", "count", "empty")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1"),
                  helper.make_node("Relu", [], [], name="empty")])


# ---- graph inputs that declare initializers (keep_initializers_as_inputs) -----------

def kiai(decl_w, decl_b=None, w_elem=F, **kw):
    """conv_model exported with keep_initializers_as_inputs: w, b are also graph inputs."""
    return conv_model(inputs=[vi("x"), vi("w", w_elem, decl_w), vi("b", F, decl_b or (4,))], **kw)


@case("kiai_weight_shape", "kiai", "w")
def _():
    return kiai((4, 3, 3, 2))


@case("kiai_weight_rank", "kiai", "w")
def _():
    return kiai((4, 3, 3))


@case("kiai_weight_type", "kiai", "w")
def _():
    return kiai((4, 3, 3, 3), w_elem=TensorProto.DOUBLE)


@case("kiai_bias_pruned", "kiai", "b")
def _():  # issue 13: initializer pruned to 4 channels, the graph input still says 8
    return kiai((4, 3, 3, 3), (8,))


@case("kiai_declared_sequence", "kiai", "w")
def _():
    return conv_model(inputs=[vi("x"), helper.make_tensor_sequence_value_info("w", F, None),
                              vi("b", F, (4,))])


@case("initializer_value_info_shape", "kiai", "w")
def _():
    return conv_model(value_info=[vi("w", F, (2, 3, 3, 3))])


@case("initializer_graph_output_shape", "kiai", "b")
def _():
    return conv_model(outputs=[vi("y", shape=(1, 4, 8, 8)), vi("b", F, (5,))])


# ---- element types ----------------------------------------------------------------

@case("relu_int64_input", "type", "relu1")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")],
                 inputs=[vi("x", TensorProto.INT64)], outputs=[vi("y", TensorProto.INT64)])


@case("add_float_double", "type", "add1")
def _():
    return model([helper.make_node("Add", ["x", "z"], ["y"], name="add1")],
                 inputs=[vi("x"), vi("z", TensorProto.DOUBLE)])


@case("output_declared_int64", "type", "y")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")],
                 outputs=[vi("y", TensorProto.INT64)])


@case("value_info_declared_int64", "type", "r")
def _():
    return model([helper.make_node("Relu", ["x"], ["r"], name="relu1"),
                  helper.make_node("Relu", ["r"], ["y"], name="relu2")],
                 value_info=[vi("r", TensorProto.INT64, None)])


@case("cast_output_declared_float", "type", "y")
def _():
    return model([helper.make_node("Cast", ["x"], ["y"], name="cast", to=TensorProto.INT64)])


@case("constant_int64_in_opset8", "type", "const")
def _():  # Constant-1 makes float types only (libonnx-testdata's test_PixelShuffle)
    return model([helper.make_node("Constant", [], ["k"], name="const",
                                   value=numpy_helper.from_array(np.array([1], np.int64))),
                  helper.make_node("Relu", ["x"], ["y"], name="relu1")], opset=8, ir=3)


@case("shape_output_declared_float", "type", "s")
def _():
    return model([helper.make_node("Shape", ["x"], ["s"], name="shape")],
                 outputs=[vi("s", F, (4,))])


@case("matmul_int32_float", "type", "mm")
def _():
    return model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                 inputs=[vi("x", TensorProto.INT32, (2, 2))], outputs=[vi("y", TensorProto.INT32, (2, 2))],
                 inits=[init("w", (2, 2))])


@case("input_without_element_type", "type", "x")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], inputs=[vi("x", 0)])


# ---- graph inputs and outputs --------------------------------------------------------

@case("input_without_shape", "value_info", "x")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], inputs=[vi("x", shape=None)])


@case("output_without_shape", "value_info", "y")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], outputs=[vi("y", shape=None)])


@case("input_without_type", "value_info", "x")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")],
                 inputs=[onnx.ValueInfoProto(name="x")])


@case("graph_without_name", "value_info")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], name="")


# ---- tensors ---------------------------------------------------------------------------

@case("tensor_int64_in_float_data", "tensor", "t")
def _():
    return add_model(tensor("t", TensorProto.INT64, [1], float_data=[1.0]))


@case("tensor_two_value_fields", "tensor", "t")
def _():
    return add_model(tensor("t", F, [1], float_data=[1.0], raw_data=b"\0\0\0\0"))


@case("tensor_no_data", "tensor", "t")
def _():
    return add_model(tensor("t", F, [1]))


@case("tensor_undefined_type", "tensor", "t")
def _():
    return add_model(tensor("t", 0, [1], float_data=[1.0]))


@case("tensor_strings_in_raw_data", "tensor", "t")
def _():
    return add_model(tensor("t", TensorProto.STRING, [1], raw_data=b"abcd"))


@case("tensor_empty_with_data", "tensor", "t")
def _():
    return add_model(tensor("t", F, [0], float_data=[1.0]))


@case("tensor_unknown_type", "tensor", "t")
def _():
    return add_model(tensor("t", 99, [1], int32_data=[1]))


@case("tensor_float8_in_ir8", "tensor", "t")
def _():
    return add_model(tensor("t", 17, [1], int32_data=[1]))


@case("constant_tensor_wrong_field", "tensor", "const")
def _():
    return model([helper.make_node("Constant", [], ["k"], name="const",
                                   value=tensor("kv", F, [1], int64_data=[1])),
                  helper.make_node("Add", ["x", "k"], ["y"], name="add1")])


# ---- structure (remodel's checks before the schemas) ----------------------------------

@case("dangling_input", "structure", "ghost")
def _():
    return model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add1")])


@case("unsorted_nodes", "structure", "r")
def _():
    return model([helper.make_node("Relu", ["r"], ["y"], name="relu2"),
                  helper.make_node("Relu", ["x"], ["r"], name="relu1")])


@case("duplicate_graph_input", "structure", "x")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], inputs=[vi("x"), vi("x")])


@case("duplicate_initializer", "structure", "t")
def _():
    m = add_model(init("t", (1,)))
    m.graph.initializer.append(init("t", (1,)))
    return m


@case("output_named_like_initializer", "structure", "t")
def _():
    return model([helper.make_node("Relu", ["x"], ["t"], name="relu1"),
                  helper.make_node("Relu", ["t"], ["y"], name="relu2")], inits=[init("t", (1,))])


@case("tensor_produced_twice", "structure", "r")
def _():
    return model([helper.make_node("Relu", ["x"], ["r"], name="relu1"),
                  helper.make_node("Relu", ["x"], ["r"], name="relu2"),
                  helper.make_node("Relu", ["r"], ["y"], name="relu3")])


@case("ir_version_missing", "structure")
def _():
    m = relu_model()
    m.ClearField("ir_version")
    return m


@case("no_opset_import", "structure")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], opset=None)


@case("ir2_with_opset_import", "structure")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], ir=2)


@case("ir3_initializer_not_input", "structure", "t")
def _():
    return model([helper.make_node("Add", ["x", "t"], ["y"], name="add1")], inits=[init("t", (1,))],
                 ir=3, opset=8)


@case("duplicate_metadata_key", "structure")
def _():
    m = relu_model()
    for v in ("1", "2"):
        e = m.metadata_props.add()
        e.key, e.value = "author", v
    return m


@case("short_raw_data", "structure", "t", ("stricter", "raw_data holds fewer bytes than dims x "
                                           "element size: every runtime reads past it or refuses "
                                           "it; onnx 1.12 does not compare the sizes"))
def _():
    return add_model(tensor("t", F, [8], raw_data=b"\0" * 16))


@case("float_data_too_long", "structure", "t", ("stricter", "3 values for dims [1]; onnx 1.12 does not "
                                                "compare the count"))
def _():
    return add_model(tensor("t", F, [1], float_data=[1.0, 2.0, 3.0]))


@case("duplicate_node_name", "structure", "n", ("stricter", "node names are one namespace of the "
                                                "ONNX IR (IR.md: names must be unique within it); "
                                                "remodel addresses nodes by name"))
def _():
    return model([helper.make_node("Relu", ["x"], ["r"], name="n"),
                  helper.make_node("Relu", ["r"], ["y"], name="n")])


@case("graph_output_not_produced", "structure", "nope", ("stricter", "a graph output no node, input "
                                                         "or initializer produces cannot be computed"))
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")],
                 outputs=[vi("y", shape=(1, 3, 8, 8)), vi("nope", F, (1,))])


# ---- subgraphs -------------------------------------------------------------------------

def if_model(then_nodes, then_name="then", then_out="t_out", else_extra=()):
    """y = If(cond) then: then_nodes (reading x from the outer scope) else: Identity(x)."""
    then_g = helper.make_graph(then_nodes, then_name, [], [vi(then_out, shape=(1, 3, 8, 8))])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e_out"], name="e_id")] + list(else_extra),
                               "else", [], [vi("e_out", shape=(1, 3, 8, 8))])
    return model([helper.make_node("If", ["cond"], ["y"], name="if1", then_branch=then_g, else_branch=else_g)],
                 inputs=[vi("x"), vi("cond", TensorProto.BOOL, ())],
                 outputs=[vi("y", shape=(1, 3, 8, 8))])


@case("subgraph_unknown_op", "subgraph", "t_foo")
def _():
    return if_model([helper.make_node("Foo", ["x"], ["t_out"], name="t_foo")])


@case("subgraph_bad_attribute", "subgraph", "t_relu")
def _():
    return if_model([helper.make_node("Relu", ["x"], ["t_out"], name="t_relu", alpha=0.5)])


@case("subgraph_without_name", "subgraph", "if1")
def _():
    return if_model([helper.make_node("Relu", ["x"], ["t_out"], name="t_relu")], then_name="")


@case("subgraph_dangling_input", "subgraph", "ghost")
def _():
    return if_model([helper.make_node("Add", ["x", "ghost"], ["t_out"], name="t_add")])


@case("subgraph_redefines_outer_name", "subgraph", "x")
def _():
    return if_model([helper.make_node("Relu", ["x"], ["x"], name="t_relu"),
                     helper.make_node("Relu", ["x"], ["t_out"], name="t_relu2")])


# ---- valid under newer ONNX than the oracle's (remodel warns, onnxruntime loads them) ---

@case("opset18_reducemean_axes_input", "newer", None, ("newer", "ReduceMean-18 takes axes as an input; "
                                                        "onnx 1.12 only knows ReduceMean-13"))
def _():
    return model([helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=1)],
                 inits=[init("axes", (2,), np.int64, 2)], outputs=[vi("y", shape=(1, 3, 1, 8))],
                 opset=18, ir=8)


@case("ir9_model", "newer", None, ("newer", "IR version 9 (onnx 1.14); onnx 1.12's checker "
                                   "refuses every IR above its own (8)"))
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], ir=9)


# ---- valid, though odd (the oracle accepts them; so must remodel) ----------------------

@case("ok_custom_domain_imported", "valid")
def _():
    return model([helper.make_node("Foo", ["x"], ["y"], name="foo", domain="com.example", anything=3)],
                 more_opsets=[("com.example", 1)])


@case("ok_microsoft_domain", "valid")
def _():
    return model([helper.make_node("FusedConv", ["x", "w"], ["y"], name="fc", domain="com.microsoft",
                                   activation="Relu")],
                 inits=[init("w", (4, 3, 1, 1))], more_opsets=[("com.microsoft", 1)])


@case("ok_optional_inputs_empty", "valid")
def _():
    return model([helper.make_node("Conv", ["x", "w", ""], ["c"], name="conv1"),
                  helper.make_node("Clip", ["c", "", "hi"], ["y"], name="clip")],
                 inits=[init("w", (4, 3, 1, 1)), init("hi", (), fill=6.0)],
                 outputs=[vi("y", shape=(1, 4, 8, 8))])


@case("ok_resize_roi_empty", "valid")
def _():
    return model([helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", mode="nearest")],
                 inits=[init("scales", (4,), fill=1.0)])


@case("ok_optional_output_empty", "valid")
def _():
    return model([helper.make_node("Dropout", ["x"], ["y", ""], name="drop")])


@case("ok_variadic_input_empty", "valid")
def _():
    return model([helper.make_node("Concat", ["x", ""], ["y"], name="cat", axis=1)])


@case("ok_experimental_op", "valid")
def _():
    return model([helper.make_node("ATen", ["x"], ["y"], name="aten", operator="relu")])


@case("ok_internal_attribute", "valid")
def _():
    return relu_model(__remodel_note=1)


@case("ok_layernorm_extra_attribute", "valid")
def _():  # LayerNormalization-17 accepts attributes it does not declare
    return model([helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln", not_declared=1)],
                 inits=[init("s", (8,), fill=1.0)], opset=17, ir=8)


@case("ok_batchnorm_five_outputs", "valid")
def _():  # BatchNormalization-9 in training mode: 1 or 5 outputs
    return model([helper.make_node("BatchNormalization", ["x", "s", "bias", "mean", "var"],
                                   ["y", "m1", "v1", "m2", "v2"], name="bn")],
                 inits=[init(n, (3,), fill=1.0) for n in ("s", "bias", "mean", "var")], opset=9, ir=4)


@case("ok_kiai_consistent", "valid")
def _():
    return kiai((4, 3, 3, 3))


@case("ok_kiai_symbolic_dims", "valid")
def _():
    return kiai(("out", 3, "k", "k"), ("out",))


@case("ok_value_info_shadowed_by_input", "valid")
def _():  # onnx takes a graph input's type over a value_info of the same name
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")],
                 value_info=[vi("x", TensorProto.INT64, (1,))])


@case("ok_only_ml_domain", "valid")
def _():
    return model([helper.make_node("Normalizer", ["x2"], ["y"], name="norm", domain="ai.onnx.ml", norm="MAX")],
                 inputs=[vi("x2", F, (2, 4))], outputs=[vi("y", F, (2, 4))], opset=None,
                 more_opsets=[("ai.onnx.ml", 3)])


@case("ok_zero_size_input", "valid")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], inputs=[vi("x", F, (0, 3, 8, 8))])


@case("ok_negative_dim_input", "valid")
def _():  # onnx accepts it; remodel warns
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], inputs=[vi("x", F, (1, -3, 8, 8))])


@case("ok_opset_far_future", "valid")
def _():  # onnx 1.12 looks up the newest schema <= 99; remodel warns it cannot check
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], opset=99)


@case("ok_types_through_cast_and_shape", "valid")
def _():
    return model([helper.make_node("Shape", ["x"], ["s"], name="shape"),
                  helper.make_node("Cast", ["s"], ["sf"], name="cast", to=F),
                  helper.make_node("Constant", [], ["k"], name="const", value_ints=[1, 2, 3, 4]),
                  helper.make_node("Add", ["s", "k"], ["y"], name="add1")],
                 outputs=[vi("y", TensorProto.INT64, (4,)), vi("sf", F, (4,))])


@case("ok_unused_input_any_type", "valid")
def _():
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")],
                 inputs=[vi("x"), vi("u", TensorProto.STRING, (1,))])


@case("ok_empty_tensor_no_data", "valid")
def _():  # an unused initializer with no elements and no data
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu1")], inits=[tensor("t", F, [0])])


@case("ok_model_local_function", "valid")
def _():
    fn = helper.make_function("local.fn", "Double", ["a"], ["b"],
                              [helper.make_node("Add", ["a", "a"], ["b"])], [helper.make_opsetid("", 13)])
    m = model([helper.make_node("Double", ["x"], ["y"], name="dbl", domain="local.fn")],
              more_opsets=[("local.fn", 1)], ir=8)
    m.functions.append(fn)
    return m


@case("ok_subgraph_reads_outer_scope", "valid")
def _():
    return if_model([helper.make_node("Relu", ["x"], ["t_out"], name="t_relu")])


def oracle(path):
    """onnx's verdict on the file at path: ("accepted", "") or ("rejected", its message).
    The model is passed in memory: given a path, check_model(full_check=True) writes the
    inferred model back over the file."""
    with open(path, "rb") as f:
        m = onnx.load_from_string(f.read())
    try:
        onnx.checker.check_model(m, full_check=True)
        return "accepted", ""
    except Exception as e:  # noqa: BLE001 - every refusal is a verdict
        return "rejected", " ".join(str(e).split())[:300]


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUT, "*.onnx")):
        os.remove(old)
    names = [c[0] for c in CASES]
    if len(names) != len(set(names)):
        sys.exit("duplicate case names")
    manifest = {}
    for name, category, m, mention, deviation in CASES:
        path = os.path.join(OUT, name + ".onnx")
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        verdict, message = oracle(path)
        if deviation is None:
            expect = "findings" if verdict == "rejected" else "clean"
        elif deviation[0] == "stricter":
            if verdict != "accepted":
                sys.exit("%s: marked stricter but the oracle rejects it" % name)
            expect = "findings"
        else:
            if verdict != "rejected":
                sys.exit("%s: marked newer but the oracle accepts it" % name)
            expect = "clean"
        if category == "valid" and verdict != "accepted":
            sys.exit("%s: meant valid, the oracle says: %s" % (name, message))
        if category not in ("valid", "newer") and deviation is None and verdict != "rejected":
            sys.exit("%s: meant broken, the oracle accepts it" % name)
        manifest[name] = {"category": category, "oracle": verdict, "oracle_message": message,
                          "remodel": expect, "mention": mention,
                          "deviation": None if deviation is None else {"kind": deviation[0], "why": deviation[1]}}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")

    # the oracle on every other model remodel check must judge as it does
    others = sorted(glob.glob(os.path.join(HERE, "*.onnx")) + glob.glob(os.path.join(HERE, "edits", "*.onnx")) +
                    glob.glob(os.path.join(HERE, "torchvision", "*.onnx")))
    rows = [(os.path.relpath(p, HERE), oracle(p)) for p in others]
    for sub in ("node", "pytorch-converted"):
        for p in sorted(glob.glob(os.path.join(CONFORMANCE, sub, "*", "model.onnx"))):
            rows.append((os.path.relpath(p, CONFORMANCE).replace(os.sep, "/").join(["libonnx-testdata:", ""]),
                         oracle(p)))
    with open(os.path.join(OUT, "oracle_verdicts.tsv"), "w") as f:
        f.write("# model\tonnx %s check_model(full_check=True)\tmessage\n" % onnx.__version__)
        for rel, (verdict, message) in rows:
            f.write("%s\t%s\t%s\n" % (rel, verdict, message.replace("\t", " ")))

    n_rej = sum(1 for v in manifest.values() if v["oracle"] == "rejected")
    print("broken/: %d models, %d rejected by onnx %s (%d deviations); oracle_verdicts.tsv: %d models, %d rejected"
          % (len(manifest), n_rej, onnx.__version__,
             sum(1 for v in manifest.values() if v["deviation"]), len(rows),
             sum(1 for _, (v, _m) in rows if v == "rejected")))


if __name__ == "__main__":
    main()
