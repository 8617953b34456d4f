"""Rules reported by the evidence collectors: code, dependencies, licenses, BOM."""

from __future__ import annotations

from mltrust.findings import Severity, define_rule

_UNSAFE_LOAD = ("AML.T0011.000", "AML.M0011")

# -- code ------------------------------------------------------------------------------------
CODE_PICKLE_LOAD = define_rule(
    "MLT-CODE-001",
    "unsafe-deserialization-call",
    "Code deserializes with pickle, joblib, dill, cloudpickle, shelve, jsonpickle or marshal, "
    "which can run arbitrary code embedded in what it loads (marshal: crash the interpreter).",
    Severity.HIGH,
    cwe=502,
    atlas=_UNSAFE_LOAD,
    remediation="Load models through mltrust's safe loader, or store them as safetensors/ONNX.",
)
CODE_TORCH_LOAD = define_rule(
    "MLT-CODE-002",
    "torch-load-without-weights-only",
    "torch.load is called without weights_only=True, so the checkpoint is unpickled with the "
    "full pickle machinery.",
    Severity.HIGH,
    cwe=502,
    atlas=_UNSAFE_LOAD,
    remediation="Pass weights_only=True, or use safetensors.",
)
CODE_YAML_LOAD = define_rule(
    "MLT-CODE-003",
    "yaml-unsafe-load",
    "yaml.load without SafeLoader/CSafeLoader (or yaml.unsafe_load) can construct arbitrary "
    "Python objects from the document.",
    Severity.HIGH,
    cwe=502,
    remediation="Use yaml.safe_load or Loader=yaml.SafeLoader.",
)
CODE_NUMPY_PICKLE = define_rule(
    "MLT-CODE-004",
    "numpy-load-allow-pickle",
    "numpy.load(allow_pickle=True) unpickles object arrays stored in the file.",
    Severity.HIGH,
    cwe=502,
    atlas=_UNSAFE_LOAD,
    remediation="Keep allow_pickle=False (the default) and store plain arrays.",
)
CODE_EVAL_CONTENT = define_rule(
    "MLT-CODE-005",
    "eval-of-external-content",
    "eval/exec runs text read from a file, a model URI or a network response.",
    Severity.CRITICAL,
    cwe=95,
    remediation="Parse the content as data (json, ast.literal_eval) instead of evaluating it.",
)
CODE_EVAL_DYNAMIC = define_rule(
    "MLT-CODE-013",
    "eval-of-dynamic-value",
    "eval/exec runs a string that is not a literal; where it comes from was not proven safe.",
    Severity.HIGH,
    cwe=95,
    remediation="Parse data (json, ast.literal_eval) instead of evaluating it, or waive the "
    "finding by rule and path after review.",
)
CODE_REMOTE_CODE = define_rule(
    "MLT-CODE-006",
    "trust-remote-code",
    "trust_remote_code=True lets a model repository run its own Python code when loaded.",
    Severity.HIGH,
    cwe=829,
    atlas=("AML.T0010.003",),
    remediation="Pin a reviewed revision and vendor the code, or avoid trust_remote_code.",
)
CODE_KERAS_UNSAFE = define_rule(
    "MLT-CODE-007",
    "keras-load-unsafe-mode",
    "keras load_model(..., safe_mode=False) deserializes Lambda layers' bytecode.",
    Severity.HIGH,
    cwe=502,
    atlas=_UNSAFE_LOAD,
    remediation="Keep safe_mode=True and avoid Lambda layers in shared models.",
)
CODE_BANDIT = define_rule(
    "MLT-CODE-008",
    "bandit-issue",
    "bandit reported a security issue in Python code (the bandit test ID is in the finding).",
    Severity.MEDIUM,
    remediation="See the bandit documentation of the reported test ID.",
)
CODE_PRIVATE_KEY = define_rule(
    "MLT-CODE-009",
    "committed-private-key",
    "A PEM private key is committed to the project.",
    Severity.CRITICAL,
    cwe=798,
    remediation="Remove the key from the repository and its history, and rotate it.",
)
CODE_TOKEN = define_rule(
    "MLT-CODE-010",
    "committed-token",
    "A cloud or service credential (AWS, GitHub, Slack, Google, Hugging Face) is committed.",
    Severity.CRITICAL,
    cwe=798,
    remediation="Revoke the credential, remove it from history and load secrets at runtime.",
)
CODE_HIGH_ENTROPY = define_rule(
    "MLT-CODE-011",
    "high-entropy-secret",
    "A high-entropy string is assigned to a name that suggests a secret (token, key, password).",
    Severity.HIGH,
    cwe=798,
    remediation="Move the value to a secret manager or environment variable.",
)
CODE_PASSWORD = define_rule(
    "MLT-CODE-014",
    "hard-coded-password",
    "A password or secret is written into the project as a literal (an assignment, an env file "
    "line or a URL).",
    Severity.HIGH,
    cwe=259,
    remediation="Read it from the environment or a secret manager, remove it from history and "
    "change it.",
)
CODE_UNPARSABLE = define_rule(
    "MLT-CODE-012",
    "code-not-analysed",
    "A Python file, notebook or archive member could not be parsed or decoded safely, or is "
    "compiled code (bytecode, an extension module), so it was not analysed.",
    Severity.LOW,
    remediation="Fix the syntax error, save the file as UTF-8, commit source instead of "
    "bytecode, or waive the file after review.",
)

CODE_INTERNALS = define_rule(
    "MLT-CODE-017",
    "interpreter-internals-access",
    "Code reaches interpreter internals that lead from any object to every class, module or "
    "builtin (`__subclasses__`, `__globals__`, `__builtins__`, frame globals, "
    "`ctypes.pythonapi`) or replaces a function's `__code__`: the gadgets used to escape a "
    "sandbox or hide a call.",
    Severity.HIGH,
    cwe=94,
    remediation="Use the public API of the module you need; review the code and waive the "
    "finding by rule and path if the access is intended.",
)
CODE_LOW_LEVEL_SPAWN = define_rule(
    "MLT-CODE-018",
    "low-level-process-spawn",
    "Code starts a process through a low-level interface (posix/nt.system, os.posix_spawn, "
    "pty.spawn, _posixsubprocess.fork_exec, _winapi.CreateProcess) that shell-injection "
    "checks of os and subprocess do not see.",
    Severity.HIGH,
    cwe=78,
    remediation="Use subprocess with a list of arguments and no shell, or waive the finding "
    "by rule and path after review.",
)

CODE_SUPPRESSION_INVALID = define_rule(
    "MLT-CODE-015",
    "inline-suppression-invalid",
    "An inline `mltrust: ignore[RULE-ID] reason` marker names no rule, names a rule that is not "
    "a code or secret rule, or gives no reason; it suppresses nothing.",
    Severity.MEDIUM,
    remediation="Write `# mltrust: ignore[MLT-CODE-010] why this is acceptable` on the line of "
    "the finding (or the line above it).",
)

CODE_NOT_SEARCHED = define_rule(
    "MLT-CODE-016",
    "secrets-not-searched",
    "A file (or the part of it past the search cap) was not searched for secrets: it could "
    "not be read, or it is larger than the bytes the secret search covers.",
    Severity.MEDIUM,
    remediation="Keep large data out of the source tree, or review the file and waive this one "
    "finding (rule and path).",
)

# -- dependencies ----------------------------------------------------------------------------
DEP_VULNERABLE = define_rule(
    "MLT-DEP-001",
    "vulnerable-dependency",
    "A dependency version is affected by a known advisory.",
    Severity.HIGH,
    cwe=1395,
    atlas=("AML.T0010.001", "AML.M0016"),
    remediation="Upgrade to a fixed version.",
)
DEP_UNPINNED = define_rule(
    "MLT-DEP-002",
    "unpinned-dependency",
    "A direct requirement is not pinned to one version (==), so builds can drift.",
    Severity.LOW,
    cwe=1357,
    remediation="Pin exact versions in a lock file (pip-compile, poetry lock, uv lock).",
)
DEP_DRIFT = define_rule(
    "MLT-DEP-003",
    "transitive-range-drift",
    "An installed package requires another through a version range that can resolve "
    "differently on the next install.",
    Severity.INFO,
    remediation="Install from a lock file that pins transitive dependencies.",
)
DEP_OUTDATED = define_rule(
    "MLT-DEP-004",
    "outdated-dependency",
    "A dependency is older than versions known from the advisory database (a lower bound of "
    "the latest release).",
    Severity.LOW,
    remediation="Upgrade regularly.",
)
DEP_IMAGE_VULN = define_rule(
    "MLT-DEP-005",
    "vulnerable-image-package",
    "A package in the container image is affected by a known vulnerability (from the Trivy or "
    "Grype report given).",
    Severity.HIGH,
    cwe=1395,
    remediation="Rebuild the image on a patched base or upgrade the package.",
)
DEP_UNREADABLE = define_rule(
    "MLT-DEP-006",
    "dependency-file-unreadable",
    "A requirements or lock file could not be parsed; its dependencies were not checked.",
    Severity.MEDIUM,
    remediation="Fix the file's syntax.",
)

DEP_RANGE_VULNERABLE = define_rule(
    "MLT-DEP-007",
    "range-allows-vulnerable-version",
    "An unpinned requirement allows versions that a known advisory affects; an install can "
    "pick one of them.",
    Severity.MEDIUM,
    cwe=1395,
    remediation="Raise the lower bound above the fixed version, or pin a fixed version.",
)

DEP_UNVERIFIABLE = define_rule(
    "MLT-DEP-008",
    "dependency-not-verifiable",
    "A requirement installs from a VCS, a URL, an archive, a path outside the project or a "
    "shell variable: no released version to match against advisories, so it was not checked.",
    Severity.MEDIUM,
    cwe=1357,
    remediation="Depend on a released version from the package index, or review the source "
    "and waive this one finding.",
)

# -- licenses --------------------------------------------------------------------------------
LIC_UNKNOWN = define_rule(
    "MLT-LIC-001",
    "license-unknown",
    "A license text or declaration could not be mapped to an SPDX identifier.",
    Severity.LOW,
    remediation="Declare the license with an SPDX identifier.",
)
LIC_RESTRICTIVE = define_rule(
    "MLT-LIC-002",
    "restrictive-license",
    "A license restricts use: non-commercial, network copyleft (AGPL), strong copyleft, or "
    "use-based restrictions (OpenRAIL, Llama community licenses).",
    Severity.MEDIUM,
    remediation="Check the license against how the model or package is used and distributed.",
)

# -- BOM -------------------------------------------------------------------------------------
BOM_MISSING = define_rule(
    "MLT-BOM-001",
    "ml-bom-missing",
    "No machine-learning bill of materials (CycloneDX ML-BOM) could be produced or found.",
    Severity.MEDIUM,
    atlas=("AML.M0023",),
    remediation="Run `mltrust check` (which writes one) or provide a CycloneDX BOM.",
)

# -- evidence --------------------------------------------------------------------------------
EVIDENCE_IGNORED = define_rule(
    "MLT-EVD-001",
    "untrusted-evidence-ignored",
    "An evidence file beside the subject was ignored: it is not signed by a key passed with "
    "--key, its signature does not verify, or it is about another subject.",
    Severity.LOW,
    cwe=345,
    remediation="Sign evidence with `mltrust attest` and pass the public key with --key.",
)
