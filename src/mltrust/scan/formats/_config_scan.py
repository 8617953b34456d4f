"""The config scanner's work (:mod:`mltrust.scan.formats.config`), imported only when a
config is scanned. See that module for what is reported and why."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mltrust._lazy import lazy_pattern
from mltrust.errors import LimitExceeded
from mltrust.findings import Location, Severity
from mltrust.scan._context import ScanContext
from mltrust.scan.formats._rules_keras_config import (
    CFG_DANGEROUS_TARGET,
    CFG_EVAL_INTERPOLATION,
    CFG_GADGET_TARGET,
    CFG_MALFORMED,
    CFG_UNKNOWN_TARGET,
    CFG_YAML_PYTHON_TAG,
    KER_LAMBDA,
)
from mltrust.scan.formats.config import _code_hint, _decode, _is_template_name, text_encoding
from mltrust.scan.formats.onnx import analyze_onnx_json, looks_like_onnx_json

if TYPE_CHECKING:
    from mltrust.scan.formats.keras import Judgement

# (*) Keras, Hydra and chat-template analysis is imported where a scan first needs it: sniffing
# needs none of it, and a scan of a file that is not a config should not pay for loading it.

__all__ = ["has_code_hint", "judge_target", "scan_config"]


#: Targets that call or resolve another callable given as data.
_GADGET_PREFIXES = (
    "hydra.utils.",
    "hydra._internal.",
    "functools.",
    "operator.",
    "pkgutil.",
    "builtins.getattr",
    "builtins.setattr",
    "nemo.utils.model_utils.import_class_by_path",
)


_dotted = lazy_pattern(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\Z")


_yaml_key_line = lazy_pattern(r"""[A-Za-z_"'][^:\n]{0,200}:(\s|$)""")


_PY_TAG = "tag:yaml.org,2002:python/"


_py_tag_text = lazy_pattern(
    r"!!python(?:/|%2[fF])[\w/.:%-]*|!<tag:yaml\.org,2002:python(?:/|%2[fF])[^>]*>"
)


#: A ``%TAG`` directive whose prefix names Python tags (``%TAG !p! tag:yaml.org,2002:python/``).
_py_tag_directive = lazy_pattern(
    r"^%TAG[ \t]+(![\w-]*!?)[ \t]+(?:tag:yaml\.org,2002:|!!?)?python(?:/|%2[fF])", re.MULTILINE
)


#: Escapes of YAML double-quoted scalars, undone before the textual fallback searches keys.
_yaml_escape = lazy_pattern(r"\\x([0-9a-fA-F]{2})|\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})")


_json_target = lazy_pattern(r'"_target_"\s*:\s*"([^"\\]{1,300})"')


_yaml_target = lazy_pattern(r"""_target_['"]?\s*:\s*(?:!\S*\s+)?['"]?([A-Za-z_][\w.]{0,300})""")


_lambda_mark = lazy_pattern(r'"class_name"\s*:\s*"(__lambda__|Lambda)"')


_eval_interpolation = lazy_pattern(r"\$\{\s*(eval|python|exec|py)\s*:([^}\n]{0,500})")


_eval_danger = lazy_pattern(
    r"__|\bimport\b|\bos\s*\.|system|subprocess|\bopen\s*\(|\beval\b|\bexec\b"
)


_YAML_TRUE = {"true", "yes", "on", "y"}
_YAML_FALSE = {"false", "no", "off", "n"}

# --------------------------------------------------------------------------------------------
# Targets


def judge_target(dotted: str, ctx: ScanContext) -> Judgement:
    """Judge a Hydra ``_target_`` (a dotted path to a callable).

    :func:`judge_callable` decides: its denylist first, the project's ``allow_targets``, then
    the generated, reviewed list of ordinary training classes (:mod:`._hydra_targets`, exact
    names: ``torch.utils.data.DataLoader`` is instantiated by every training config even
    though the pickle policy refuses that module in a pickle), then the pickle policy. No
    module prefix is trusted: allowlisted libraries also ship test utilities and helpers that
    run processes.
    """
    from mltrust.scan.formats._hydra_targets import TARGETS as HYDRA_TARGETS  # (*)
    from mltrust.scan.formats.keras import judge_callable  # (*)

    return judge_callable(dotted, ctx.config, allow_exact=HYDRA_TARGETS)


def _truthy(value: object) -> bool:
    """Whether ``trust_remote_code`` may be true when the config is instantiated.

    Fail closed: only values that are false as written (``false``/``no``/``off``/``n``, an
    empty string, ``0``, ``null``) are false. An interpolation (``${remote}``,
    ``${oc.decode:"true"}``) or a nested object (``{_target_: builtins.bool, ...}``) is
    resolved by Hydra/OmegaConf at load time, so it counts as possibly true (red-team finding).
    """
    if value is None or value is False:
        return False
    if isinstance(value, str):
        text = value.strip().lower()
        return text not in _YAML_FALSE and text not in ("", "0", "null", "~", "none")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    return True


def _report_target(
    ctx: ScanContext, loc: Location, where: str, dotted: str, siblings: dict[str, Any] | None
) -> None:
    verdict = judge_target(dotted, ctx)
    here = loc.at(detail=where)
    if verdict.allowed:
        if siblings is not None and _truthy(siblings.get("trust_remote_code")):
            ctx.report(
                CFG_DANGEROUS_TARGET,
                f"_target_ {dotted} with trust_remote_code=true runs Python code downloaded "
                "from the model repository",
                here,
                severity=Severity.HIGH,
            )
        return
    if not verdict.known_bad:
        ctx.report(
            CFG_UNKNOWN_TARGET,
            f"_target_ {dotted} is not on the allowlist; its code runs when the config is "
            "instantiated",
            here,
        )
        return
    if dotted.startswith(_GADGET_PREFIXES):
        _report_gadget(ctx, here, dotted, verdict, siblings)
        return
    ctx.report(
        CFG_DANGEROUS_TARGET,
        f"_target_ {dotted} runs when the config is instantiated: {verdict.reason}",
        here,
        severity=verdict.severity,
    )


_GADGET_ARGUMENT_KEYS = ("path", "_args_", "func", "function", "target", "class_path", "method")


def _report_gadget(
    ctx: ScanContext,
    here: Location,
    dotted: str,
    verdict: Judgement,
    siblings: dict[str, Any] | None,
) -> None:
    """A target that resolves another one (``hydra.utils.get_class`` + ``path``): judge that."""
    inner = [(arg, judge_target(arg, ctx)) for arg in _gadget_arguments(siblings)]
    if not inner:
        ctx.report(
            CFG_GADGET_TARGET,
            f"_target_ {dotted} resolves a callable that is not written in the config: "
            f"{verdict.reason}",
            here,
            severity=verdict.severity,
        )
        return
    bad = [(a, v) for a, v in inner if v.known_bad and v.severity is not None]
    if bad:
        arg, worst = max(bad, key=lambda item: item[1].severity.rank if item[1].severity else 0)
        severity = worst.severity or Severity.HIGH
        ctx.report(
            CFG_DANGEROUS_TARGET,
            f"_target_ {dotted} resolves {arg}: {worst.reason}",
            here,
            severity=severity if severity > Severity.HIGH else Severity.HIGH,
        )
        return
    unknown = [a for a, v in inner if not v.allowed]
    if unknown:
        ctx.report(
            CFG_UNKNOWN_TARGET,
            f"_target_ {dotted} resolves {', '.join(unknown[:4])}, not on the allowlist",
            here,
        )


def _gadget_arguments(siblings: dict[str, Any] | None) -> Iterator[str]:
    """Dotted names passed to a gadget target (``path``, ``_args_``...)."""
    if not siblings:
        return
    for key in _GADGET_ARGUMENT_KEYS:
        value = siblings.get(key)
        values = value if isinstance(value, list) else [value]
        for v in values[:64]:
            if isinstance(v, str) and _dotted().match(v.strip()):
                yield v.strip()


def _check_document(
    doc: object, ctx: ScanContext, loc: Location, *, keras: bool | None = None
) -> None:
    """Targets, chat templates and Keras content anywhere in one parsed document.

    ``keras`` says whether the document is a Keras config; by default its shape decides.
    """
    from mltrust.scan.formats._jinja import check_chat_template  # (*)
    from mltrust.scan.formats.keras import (  # (*)
        _iter_dicts,
        analyze_keras_config,
        is_keras_config,
        too_many_findings,
    )

    start = len(ctx.findings)
    for d, path in _iter_dicts(doc, ctx, loc):
        if too_many_findings(ctx, start, loc):
            break
        where = "" if path == "/" else path
        target = d.get("_target_")
        if isinstance(target, str):
            _report_target(ctx, loc, f"{where}/_target_", target.strip(), d)
        cls = d.get("cls")
        if isinstance(cls, str) and "params" in d and _dotted().match(cls.strip()):
            _report_target(ctx, loc, f"{where}/cls", cls.strip(), d)
        template = d.get("chat_template")
        if isinstance(template, str):
            check_chat_template(template, ctx, loc.at(detail=f"{where}/chat_template"))
        elif isinstance(template, list):
            for i, entry in enumerate(template[:256]):
                text = entry.get("template") if isinstance(entry, dict) else entry
                if isinstance(text, str):
                    check_chat_template(text, ctx, loc.at(detail=f"{where}/chat_template/{i}"))
        elif isinstance(template, dict):
            # transformers keeps a dict of named templates as is and renders
            # chat_template["default"] / ["tool_use"] / [name] (red-team finding: unchecked)
            for key, text in list(template.items())[:256]:
                if isinstance(text, str):
                    check_chat_template(text, ctx, loc.at(detail=f"{where}/chat_template/{key}"))
    if looks_like_onnx_json(doc):
        # onnx.load reads a .json model (protobuf JSON) and resolves its external data
        analyze_onnx_json(doc, ctx, loc)
    if keras is None:
        keras = is_keras_config(doc)
    if keras:
        ctx.facts["keras_config"] = True
    analyze_keras_config(doc, ctx, loc, references=keras)


# --------------------------------------------------------------------------------------------
# JSON


class _Duplicates:
    """``object_pairs_hook`` keeping the last value of a repeated key, as Python's json does,
    and recording the object as the *first* value would build it: parsers disagree on which
    value wins, so both versions are checked."""

    def __init__(self) -> None:
        self.shadows: list[dict[str, Any]] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, Any] | None = None
        for key, value in pairs:
            if key in out and first is None:
                first = {}
                for k, v in pairs:
                    first.setdefault(k, v)
            out[key] = value
        if first is not None and len(self.shadows) < 4096:
            self.shadows.append(first)
        return out


def _parse_json(text: str, ctx: ScanContext, loc: Location) -> list[object] | str:
    """The JSON document (or JSON Lines records) in ``text``, or why it is not JSON.

    Objects with repeated keys are returned a second time as the first value would build them.
    Nesting too deep for Python's parser is reported here (an exhausted limit, medium).
    """
    hook = _Duplicates()
    try:
        doc = json.loads(text, object_pairs_hook=hook)
        return [doc, *hook.shadows]
    except RecursionError:
        ctx.report(CFG_MALFORMED, "JSON nested too deeply to parse; content not checked", loc)
        return "too deep"
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            records = _parse_json_lines(text)
            if records is not None:
                return records
        return f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
    except ValueError as exc:  # e.g. integers beyond Python's digit limit
        return f"invalid JSON: {exc}"


def _parse_json_lines(text: str) -> list[object] | None:
    records: list[object] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (ValueError, RecursionError):
            return None
    return records


def _fallback_json(text: str, ctx: ScanContext, loc: Location) -> None:
    """Textual checks on a JSON document that could not be parsed."""
    for m in list(_json_target().finditer(text))[:256]:
        _report_target(ctx, loc, "_target_ (unparsed)", m.group(1).strip(), None)
    lam = _lambda_mark().search(text)
    if lam:
        ctx.report(
            KER_LAMBDA,
            f"unparsable config declares a Keras {lam.group(1)} (serialized Python code)",
            loc.at(lam.start()),
        )


# --------------------------------------------------------------------------------------------
# YAML


def _scan_yaml(text: str, ctx: ScanContext, loc: Location) -> None:
    from mltrust.scan.formats._yaml_compose import scan_yaml

    scan_yaml(text, ctx, loc)


def _unescape(match: re.Match[str]) -> str:
    try:
        return chr(int(match.group(1) or match.group(2) or match.group(3), 16))
    except (ValueError, OverflowError):
        return match.group()


def _plain_text(text: str) -> str:
    """``text`` with YAML/JSON escapes (``\\x5f``, ``\\u005f``) undone, for textual checks."""
    return _yaml_escape().sub(_unescape, text) if "\\" in text else text


def has_code_hint(text: str) -> bool:
    """Whether text that no loader parsed carries the marks of code (escaped ones too)."""
    return (
        _code_hint().search(text) is not None or _code_hint().search(_plain_text(text)) is not None
    )


def _fallback_yaml(text: str, ctx: ScanContext, loc: Location) -> None:
    """Textual checks on a YAML document that could not be composed: Python tags written out,
    through a ``%TAG`` handle or escaped, and ``_target_`` keys (escaped, quoted or tagged)."""
    plain = _plain_text(text)
    tags = set(_py_tag_text().findall(plain))
    for directive in _py_tag_directive().finditer(plain):
        handle = directive.group(1)
        uses = re.findall(re.escape(handle) + r"[\w/.:%-]+", plain[directive.end() :])
        tags.add(f"%TAG {handle}" + (f" ({', '.join(sorted(set(uses))[:4])})" if uses else ""))
    if tags:
        ctx.report(
            CFG_YAML_PYTHON_TAG,
            "YAML text uses Python tags " + ", ".join(sorted(tags)[:8]),
            loc,
        )
    for m in list(_yaml_target().finditer(plain))[:256]:
        target = m.group(1).strip()
        if "." in target:
            _report_target(ctx, loc, "_target_ (unparsed)", target, None)


_built_config = lazy_pattern(r"\$\{\s*(oc\.create|oc\.decode)\s*:([^\n]{0,2000})")


def _check_interpolations(text: str, ctx: ScanContext, loc: Location) -> None:
    """OmegaConf ``${eval:...}``-style interpolations (text-level, parsed or not), and
    ``${oc.create:...}``/``${oc.decode:...}`` that build a config node at load time: a
    ``_target_`` inside one is instantiated by Hydra but is not a key this scanner sees, so it
    is reported as unjudged (red-team finding)."""
    for count, m in enumerate(_built_config().finditer(text)):
        if count >= 64:
            break
        if "_target_" in m.group(2) or "_partial_" in m.group(2):
            ctx.report(
                CFG_DANGEROUS_TARGET,
                f"${{{m.group(1)}:...}} builds a config with a _target_ at load time; that "
                "target is instantiated by Hydra without being judged here",
                loc.at(m.start()),
                severity=Severity.HIGH,
            )
    for count, m in enumerate(_eval_interpolation().finditer(text)):
        if count >= 64:
            break
        expr = m.group(2).strip()
        dangerous = _eval_danger().search(expr) is not None
        ctx.report(
            CFG_EVAL_INTERPOLATION,
            f"interpolation ${{{m.group(1)}:...}} evaluates {expr[:120]!r}"
            + (" (reaches imports, dunders or the OS)" if dangerous else ""),
            loc.at(m.start()),
            severity=Severity.CRITICAL if dangerous else Severity.MEDIUM,
        )


def scan_config(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """Scan a JSON or YAML config (the work of :meth:`ConfigScanner.scan`)."""
    limit = ctx.config.limits.max_text_bytes
    if len(data) > limit:
        raise LimitExceeded(
            f"config of {len(data)} bytes exceeds max_text_bytes={limit}; not checked"
        )
    raw = bytes(data)
    encoding = text_encoding(raw)
    try:
        text = _decode(raw, encoding, final=True)
    except UnicodeDecodeError as exc:
        ctx.report(
            CFG_MALFORMED,
            f"not valid {encoding.upper()} at byte {exc.start}; decoded with replacement "
            "characters",
            loc.at(exc.start),
        )
        text = raw.decode(encoding, errors="replace").removeprefix("\ufeff")
    if encoding != "utf-8":
        ctx.facts["text_encoding"] = encoding
    name = loc.members[-1] if loc.members else loc.path
    if _is_template_name(name.replace("\\", "/").rsplit("/", 1)[-1]):
        ctx.facts["chat_template_file"] = True
        from mltrust.scan.formats._jinja import check_chat_template  # (*)

        check_chat_template(text, ctx, loc.at(detail="chat template file"))
        return
    if "\x00" in text:
        ctx.report(CFG_MALFORMED, "text config contains NUL characters", loc)
    _check_interpolations(text, ctx, loc)
    stripped = text.lstrip(" \t\r\n")
    if stripped[:1] not in ("{", "["):
        _scan_yaml(text, ctx, loc)
        return
    docs = _parse_json(text, ctx, loc)
    if isinstance(docs, list):
        from mltrust.scan.formats.keras import is_keras_config  # (*)

        keras = is_keras_config(docs[0])
        for doc in docs:
            _check_document(doc, ctx, loc, keras=keras or None)
        return
    if docs == "too deep":
        _fallback_json(text, ctx, loc)
        return
    from mltrust.scan.formats._yaml_compose import composes

    if composes(text):
        # Not JSON but YAML flow style ({_target_: os.system}): read as YAML loaders do.
        ctx.report(CFG_MALFORMED, f"{docs}; read as YAML", loc, severity=Severity.LOW)
        _scan_yaml(text, ctx, loc)
        return
    # Neither loader reads it, so neither runs anything in it; a lenient reader might.
    hinted = has_code_hint(text)
    ctx.report(
        CFG_MALFORMED,
        f"{docs} (not YAML either)",
        loc,
        severity=Severity.MEDIUM if hinted else Severity.LOW,
    )
    _fallback_json(text, ctx, loc)
