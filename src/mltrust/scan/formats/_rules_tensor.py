"""Rules of the tensor-format scanners: ONNX, TensorFlow SavedModel, GGUF and safetensors."""

from __future__ import annotations

from mltrust.findings import Severity, define_rule

_ATLAS = ("AML.T0011.000", "AML.T0010.003")
_REEXPORT = "Re-export the model from a trusted source; do not load a malformed file."

# --- ONNX -------------------------------------------------------------------------------------

ONNX_MALFORMED = define_rule(
    "MLT-ONX-001",
    "onnx-malformed",
    "The ONNX model is truncated or structurally invalid; what could not be parsed was not "
    "checked.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation=_REEXPORT,
)
ONNX_EXTERNAL_DATA_ESCAPE = define_rule(
    "MLT-ONX-002",
    "onnx-external-data-path-escape",
    "A tensor's external data location is absolute, escapes the model's folder (``..`` or a "
    "symbolic link), names a URL or a special file: loading the model reads an arbitrary file "
    "(CVE-2022-25882 class).",
    Severity.HIGH,
    cwe=22,
    atlas=_ATLAS,
    remediation="Do not load the model; external data must be a relative path inside the "
    "model's folder.",
)
ONNX_EXTERNAL_DATA_MISSING = define_rule(
    "MLT-ONX-003",
    "onnx-external-data-missing",
    "A tensor's external data file is missing or smaller than the offset and length the model "
    "claims; the model is incomplete or points somewhere unexpected.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation="Scan the model together with its external data files, from the same folder.",
)
ONNX_TENSOR_SIZE = define_rule(
    "MLT-ONX-004",
    "onnx-tensor-size-mismatch",
    "A tensor's stored data does not match its declared shape and type, or claims more bytes "
    "than the file holds.",
    Severity.MEDIUM,
    cwe=130,
    atlas=_ATLAS,
    remediation=_REEXPORT,
)
ONNX_CUSTOM_DOMAIN = define_rule(
    "MLT-ONX-005",
    "onnx-custom-op-domain",
    "A node uses an operator domain outside the standard ONNX and ONNX Runtime ones; running the "
    "model requires loading a custom operator library (native code) at runtime.",
    Severity.MEDIUM,
    cwe=829,
    atlas=_ATLAS,
    remediation="Review the custom operator library before loading it; prefer standard ops.",
)
ONNX_RISKY_OP = define_rule(
    "MLT-ONX-006",
    "onnx-code-execution-op",
    "A node uses an operator that runs arbitrary code (for example ONNX Runtime's PythonOp/PyOp, "
    "which calls a Python function named in the model).",
    Severity.HIGH,
    cwe=94,
    atlas=_ATLAS,
    remediation="Do not load the model in a runtime that has Python operators enabled.",
)
ONNX_ORT_FORMAT = define_rule(
    "MLT-ONX-007",
    "onnx-serialization-not-analysed",
    "The file is an ONNX model in a serialisation mltrust does not parse (an ONNX Runtime .ort "
    "flatbuffer with the ORTM identifier, or ONNX text syntax, named .onnxtxt or opening like "
    "a model's graph, that this reader could not parse) "
    "that onnxruntime or onnx.load may read like any ONNX model; its operators (custom domains) "
    "and external data were not checked.",
    Severity.MEDIUM,
    cwe=693,
    atlas=_ATLAS,
    remediation="Scan the binary .onnx model it was converted from, or review it by hand.",
)

# --- TensorFlow ---------------------------------------------------------------------------------

TF_MALFORMED = define_rule(
    "MLT-TF-001",
    "tensorflow-malformed",
    "The TensorFlow graph protobuf is truncated or structurally invalid; what could not be "
    "parsed was not checked.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation=_REEXPORT,
)
TF_PYTHON_OP = define_rule(
    "MLT-TF-002",
    "tensorflow-python-op",
    "The graph calls a Python function (PyFunc, PyFuncStateless, EagerPyFunc): the function is "
    "looked up in the loading process and runs arbitrary Python code.",
    Severity.CRITICAL,
    cwe=94,
    atlas=_ATLAS,
    remediation="Do not load or serve the model; rebuild it without tf.py_function/numpy_function.",
)
TF_FILE_OP = define_rule(
    "MLT-TF-003",
    "tensorflow-file-system-op",
    "The graph reads or writes files (ReadFile, WriteFile, MatchingFiles, file-backed readers, "
    "datasets, summary writers, debug or print ops writing to files) outside the standard "
    "checkpoint saver: serving it can leak or overwrite files on the host.",
    Severity.HIGH,
    cwe=73,
    atlas=_ATLAS,
    remediation="Do not serve the model; a model's serving graph has no reason to touch files.",
)
TF_CHECKPOINT_OP = define_rule(
    "MLT-TF-004",
    "tensorflow-checkpoint-op",
    "The graph uses checkpoint ops (SaveV2, RestoreV2, MergeV2Checkpoints...). Inside the "
    "standard saver they are expected (reported as info); anywhere else they can write or read "
    "arbitrary paths when the model is called.",
    Severity.MEDIUM,
    cwe=73,
    atlas=_ATLAS,
    remediation="Check why the serving graph saves or restores checkpoints.",
)
TF_KERAS_LAMBDA = define_rule(
    "MLT-TF-005",
    "tensorflow-keras-lambda",
    "The SavedModel's Keras metadata contains a Lambda layer or a serialized Python function, "
    "which Keras turns back into code when loading the model.",
    Severity.HIGH,
    cwe=94,
    atlas=_ATLAS,
    remediation="Load only with safe_mode, or re-export the model without Lambda layers.",
)

TF_ASSET_ESCAPE = define_rule(
    "MLT-TF-006",
    "tensorflow-asset-path-escape",
    "A SavedModel asset file name is absolute, escapes the assets folder with '..', or is a URL: "
    "loading the model reads (for example into a vocabulary table) a file outside the model.",
    Severity.HIGH,
    cwe=22,
    atlas=_ATLAS,
    remediation="Do not load the model; asset file names must be relative paths inside assets/.",
)

# --- GGUF ---------------------------------------------------------------------------------------

GGUF_MALFORMED = define_rule(
    "MLT-GGUF-001",
    "gguf-malformed",
    "The GGUF header is invalid: bad version, counts or lengths that cannot fit in the file, "
    "unknown value types, or truncated metadata.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation=_REEXPORT,
)
GGUF_TENSOR_LAYOUT = define_rule(
    "MLT-GGUF-002",
    "gguf-tensor-layout",
    "GGUF tensor data is out of bounds, overlapping, misaligned or inconsistent with the file "
    "size; loaders have had memory-safety bugs on such files.",
    Severity.MEDIUM,
    cwe=787,
    atlas=_ATLAS,
    remediation=_REEXPORT,
)
# --- safetensors --------------------------------------------------------------------------------

ST_MALFORMED = define_rule(
    "MLT-ST-001",
    "safetensors-malformed",
    "The safetensors header is invalid: bad length, bad JSON, unknown dtype, bad shape, offsets "
    "that do not match the tensor sizes or that leave gaps or overlaps in the data section.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation=_REEXPORT,
)
ST_DUPLICATE_KEY = define_rule(
    "MLT-ST-002",
    "safetensors-duplicate-key",
    "The safetensors JSON header has a key twice: different loaders keep different values, so "
    "what is reviewed may not be what is loaded (parser differential).",
    Severity.MEDIUM,
    cwe=436,
    atlas=_ATLAS,
    remediation=_REEXPORT,
)
