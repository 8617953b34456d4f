"""Rules of the Keras, HDF5 and JSON/YAML config scanners (MLT-KER, MLT-H5, MLT-CFG)."""

from __future__ import annotations

from mltrust.findings import Severity, define_rule

__all__ = [
    "CFG_CHAT_TEMPLATE",
    "CFG_DANGEROUS_TARGET",
    "CFG_EVAL_INTERPOLATION",
    "CFG_GADGET_TARGET",
    "CFG_MALFORMED",
    "CFG_UNKNOWN_TARGET",
    "CFG_YAML_ALIAS_BOMB",
    "CFG_YAML_PYTHON_TAG",
    "H5_DUPLICATE_ATTRIBUTE",
    "H5_MALFORMED",
    "H5_NOT_FULLY_SCANNED",
    "KER_CUSTOM_OBJECT",
    "KER_DANGEROUS_CALLABLE",
    "KER_LAMBDA",
]

_ATLAS = ("AML.T0011.000", "AML.T0010.003")

KER_LAMBDA = define_rule(
    "MLT-KER-001",
    "keras-lambda-code",
    "A Keras Lambda layer (or another serialized Python lambda) carries marshalled Python "
    "bytecode that Keras rebuilds and runs when the model is loaded with safe_mode off, and "
    "that runs in every forward pass once loaded.",
    Severity.CRITICAL,
    cwe=94,
    atlas=_ATLAS,
    remediation="Do not load the model with safe_mode=False; replace the Lambda layer by a "
    "registered subclass of Layer and re-export the model.",
)
KER_DANGEROUS_CALLABLE = define_rule(
    "MLT-KER-002",
    "keras-non-keras-callable",
    "A Keras config names a callable outside Keras (module/class_name/registered_name) that "
    "Keras imports and calls while rebuilding the model: a known way to run code on load, even "
    "with safe_mode on in vulnerable Keras versions (CVE-2025-1550).",
    Severity.CRITICAL,
    cwe=502,
    atlas=_ATLAS,
    remediation="Do not load the model; update Keras and obtain the model from a trusted source.",
)
KER_CUSTOM_OBJECT = define_rule(
    "MLT-KER-003",
    "keras-custom-object",
    "A Keras config refers to a custom object from a package that is not part of Keras; its "
    "code is imported and run when the model is loaded.",
    Severity.MEDIUM,
    cwe=829,
    atlas=_ATLAS,
    remediation="Review the package providing the custom object; trust it with "
    "[scan] allow_targets in mltrust.toml.",
)
H5_NOT_FULLY_SCANNED = define_rule(
    "MLT-H5-001",
    "hdf5-keras-not-fully-scanned",
    "An HDF5 file that looks like a Keras model could not be fully analysed: its model "
    "configuration was not found or could not be decoded, so Lambda layers and custom "
    "objects in it were not checked.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation="Re-save the model in the .keras format from a trusted source, or review it "
    "by hand before loading.",
)
H5_MALFORMED = define_rule(
    "MLT-H5-002",
    "hdf5-structure-unparsed",
    "The HDF5 structure (superblock, object headers, attribute messages) could not be parsed "
    "by mltrust; the root attributes were searched for by content instead.",
    Severity.LOW,
    cwe=20,
    remediation="Re-save the file with a current HDF5 library.",
)
H5_DUPLICATE_ATTRIBUTE = define_rule(
    "MLT-H5-003",
    "hdf5-duplicate-attribute",
    "An HDF5 object carries two attributes of the same name (or a global heap two objects of "
    "one index): readers may pick either value, so what one loads may not be what another "
    "checked. mltrust analyses every value, or the one libhdf5 reads.",
    Severity.HIGH,
    cwe=436,
    atlas=_ATLAS,
    remediation="Do not load the file; re-save the model from a trusted source.",
)
H5_EXTERNAL_REFERENCE = define_rule(
    "MLT-H5-004",
    "hdf5-external-reference",
    "An HDF5 object reads its data from outside the file: a dataset stored in external raw "
    "files (any path), a virtual dataset or an external link to another HDF5 file. h5py follows "
    "them when Keras loads the weights, so any readable file ends up in the model.",
    Severity.HIGH,
    cwe=73,
    atlas=_ATLAS,
    remediation="Do not load the file; re-save the model with its data stored inside it.",
)
CFG_DANGEROUS_TARGET = define_rule(
    "MLT-CFG-001",
    "config-dangerous-target",
    "A Hydra/NeMo/OmegaConf `_target_` (instantiated by hydra.utils.instantiate when the "
    "config is used) names a callable that runs commands, evaluates code, loads pickles or "
    "touches files.",
    Severity.CRITICAL,
    cwe=94,
    atlas=_ATLAS,
    remediation="Do not instantiate the config; obtain it from a trusted source.",
)
CFG_GADGET_TARGET = define_rule(
    "MLT-CFG-002",
    "config-gadget-target",
    "A `_target_` names a gadget that resolves or calls another callable given as data "
    "(hydra.utils.call/instantiate/get_method, functools.partial, getattr, importlib...), "
    "which hides the real target from allowlists.",
    Severity.HIGH,
    cwe=470,
    atlas=_ATLAS,
    remediation="Replace the gadget by the callable itself so that it can be reviewed.",
)
CFG_UNKNOWN_TARGET = define_rule(
    "MLT-CFG-003",
    "config-unknown-target",
    "A `_target_` names a callable that is neither on the allowlist of ordinary ML classes nor "
    "known to be dangerous; its code runs when the config is instantiated.",
    Severity.MEDIUM,
    cwe=829,
    atlas=_ATLAS,
    remediation="Review the callable; trust its package with [scan] allow_targets.",
)
CFG_YAML_PYTHON_TAG = define_rule(
    "MLT-CFG-004",
    "yaml-python-tag",
    "A YAML document uses Python-object tags (!!python/object, !!python/name, "
    "!!python/module...) that construct arbitrary objects and call functions when the file is "
    "read with yaml.load/unsafe_load/full_load or an UnsafeLoader.",
    Severity.CRITICAL,
    cwe=502,
    atlas=_ATLAS,
    remediation="Never read the file with an unsafe YAML loader; use yaml.safe_load.",
)
CFG_YAML_ALIAS_BOMB = define_rule(
    "MLT-CFG-005",
    "yaml-alias-bomb",
    "A YAML document uses aliases that expand to an enormous structure (billion laughs): "
    "reading it exhausts memory and CPU.",
    Severity.HIGH,
    cwe=776,
    atlas=("AML.T0029",),
    remediation="Reject the document; do not load it with a YAML library that expands aliases.",
)
CFG_MALFORMED = define_rule(
    "MLT-CFG-006",
    "config-unparsable",
    "A JSON or YAML document is malformed, truncated, not UTF-8 or nested beyond the limit; "
    "its content was not (fully) checked.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation="Regenerate the file from a trusted source.",
)
CFG_CHAT_TEMPLATE = define_rule(
    "MLT-CFG-007",
    "chat-template-ssti",
    "A Jinja chat template reaches Python internals (__class__, __subclasses__, __globals__, "
    "__builtins__...): server-side template injection that runs code in servers rendering "
    "templates with a non-sandboxed Jinja environment.",
    Severity.CRITICAL,
    cwe=1336,
    atlas=_ATLAS,
    remediation="Replace the chat template by a reviewed one; render templates only in a "
    "jinja2 sandboxed environment.",
)
CFG_EVAL_INTERPOLATION = define_rule(
    "MLT-CFG-008",
    "config-eval-interpolation",
    "An OmegaConf interpolation calls an evaluating resolver (${eval:...}, ${python:...}); "
    "projects that register Python's eval as a resolver run the expression when the config is "
    "resolved.",
    Severity.MEDIUM,
    cwe=95,
    atlas=_ATLAS,
    remediation="Replace the expression by a literal value, or review what the resolver does.",
)
