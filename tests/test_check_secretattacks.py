"""Red-team bypasses of the secret search: a secret after a NUL byte, in UTF-16 without a
BOM, in a file larger than the whole-file limit, at the end of a very long line, or in a
notebook's outputs, attachments or metadata. Tokens are assembled at run time so this file
holds none."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
from pathlib import Path

import pytest

from mltrust.evidence import CollectContext, _code, collect_evidence
from mltrust.policy import ControlStatus, evaluate, load_profile
from mltrust.policy._waivers import parse_waivers

# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
HF = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
SECRETS = "no-committed-secrets"


def _check(root: Path, waivers: object = None):  # type: ignore[no-untyped-def]
    bundle = collect_evidence(CollectContext(root))
    parsed = parse_waivers(waivers) if waivers is not None else ()
    verdict = evaluate(bundle.document, load_profile("default"), waivers=parsed)
    code = bundle.document["code"]
    return code, {r.control.id: r for r in verdict.results}


def _found(code: dict) -> set[tuple[str, int]]:  # type: ignore[type-arg]
    return {(s["path"], s["line"]) for s in code["secrets"]}


def test_attack_secret_after_a_nul_byte_is_found(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_bytes(
        b"header\x00\x01\x02\x03\n" + f"export GITHUB_TOKEN={GH}\n".encode()
    )
    blob = bytes(random.Random(1).randbytes(20_000))
    (tmp_path / "weights.bin").write_bytes(blob + b"\n\x00" + f"token={HF}".encode() + b"\x00")
    code, controls = _check(tmp_path)
    assert ("notes.txt", 2) in _found(code)
    assert "weights.bin" in {s["path"] for s in code["secrets"]}
    assert controls[SECRETS].status is ControlStatus.FAIL


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_attack_utf16_without_bom_is_decoded(tmp_path: Path, codec: str) -> None:
    text = f"# settings\nname = 'demo'\nexport GITHUB_TOKEN={GH}\n"
    (tmp_path / "settings.conf").write_bytes(text.encode(codec))
    code, controls = _check(tmp_path)
    assert _found(code) == {("settings.conf", 3)}
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_attack_utf16_looking_prefix_then_ascii_secret(tmp_path: Path) -> None:
    prefix = ("x" * 3000 + "\n").encode("utf-16-le")
    (tmp_path / "mixed.dat").write_bytes(prefix + f"\nGITHUB_TOKEN={GH}\n".encode())
    code, _ = _check(tmp_path)
    assert "mixed.dat" in {s["path"] for s in code["secrets"]}


def test_attack_secret_at_the_end_of_a_very_long_line(tmp_path: Path) -> None:
    (tmp_path / "bundle.min.js").write_text(
        "var a=1;" * 20_000 + f'const t="{GH}";\n' + "x\n" + "y" * 30_000 + f" token={HF}\n"
    )
    code, _ = _check(tmp_path)
    assert _found(code) == {("bundle.min.js", 1), ("bundle.min.js", 3)}


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole-file reads up to 64 KiB, so 'large' files stay small in tests."""
    monkeypatch.setattr(
        _code, "DEFAULT_LIMITS", _code.DEFAULT_LIMITS.replace(max_code_text_bytes=64 * 1024)
    )


def test_attack_secret_in_a_file_larger_than_the_whole_file_limit(
    tmp_path: Path, small_limits: None
) -> None:
    filler = "".join(f"row {i}, value {i * 7}\n" for i in range(20_000))  # ~400 KiB
    lines = filler.count("\n")
    data = filler + f"export GITHUB_TOKEN={GH}\n"
    (tmp_path / "dump.csv").write_text(data)
    # A token across the first chunk boundary (no line break near it).
    boundary = "z" * (64 * 1024 - 10) + f" token={HF} " + "z" * 100_000 + "\n"
    (tmp_path / "one-line.txt").write_text(boundary)
    # UTF-16 without a BOM, in chunks.
    (tmp_path / "wide.txt").write_bytes(data.encode("utf-16-le"))
    code, controls = _check(tmp_path)
    assert _found(code) == {
        ("dump.csv", lines + 1),
        ("one-line.txt", 1),
        ("wide.txt", lines + 1),
    }
    assert code["secrets_not_searched"] == []
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_attack_bytes_past_the_search_cap_fail_closed(
    tmp_path: Path, small_limits: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        _code, "DEFAULT_LIMITS", _code.DEFAULT_LIMITS.replace(max_secret_file_bytes=128 * 1024)
    )
    (tmp_path / "big.log").write_text("a line of log output\n" * 20_000)  # 420 KiB, clean
    code, controls = _check(tmp_path)
    assert code["secrets"] == []
    [row] = code["secrets_not_searched"]
    assert row["path"] == "big.log" and row["rule_id"] == "MLT-CODE-016"
    assert "not searched" in row["message"]
    assert controls[SECRETS].status is ControlStatus.FAIL
    assert any(d.startswith("not searched: big.log") for d in controls[SECRETS].details)
    expires = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    waiver = [
        {"rule": "MLT-CODE-016", "path": "big.log", "justification": "log", "expires": expires}
    ]
    _, controls = _check(tmp_path, waiver)
    assert controls[SECRETS].status is ControlStatus.PASS


def test_attack_overall_cap_spent_fails_closed(
    tmp_path: Path, small_limits: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        _code, "DEFAULT_LIMITS", _code.DEFAULT_LIMITS.replace(max_secret_total_bytes=300 * 1024)
    )
    for name in ("a.log", "b.log"):
        (tmp_path / name).write_text("a line of log output\n" * 10_000)  # 210 KiB each
    code, controls = _check(tmp_path)
    assert [r["path"] for r in code["secrets_not_searched"]] == ["b.log"]
    assert "overall cap" in code["secrets_not_searched"][0]["message"]
    assert controls[SECRETS].status is ControlStatus.FAIL


def _nb(cell: dict, metadata: dict | None = None) -> str:  # type: ignore[type-arg]
    base = {"cell_type": "code", "metadata": {}, "source": ["x = 1\n"], "outputs": []}
    return json.dumps(
        {"cells": [base | cell], "metadata": metadata or {}, "nbformat": 4, "nbformat_minor": 5}
    )


@pytest.mark.parametrize(
    ("where", "notebook"),
    [
        ("stream", _nb({"outputs": [{"output_type": "stream", "text": [f"tok {GH}\n"]}]})),
        (
            "text/html",
            _nb(
                {
                    "outputs": [
                        {"output_type": "display_data", "data": {"text/html": [f"<b>{GH}</b>"]}}
                    ]
                }
            ),
        ),
        (
            "application/json",
            _nb(
                {
                    "outputs": [
                        {
                            "output_type": "execute_result",
                            "data": {"application/json": {"config": {"hf": HF}}},
                        }
                    ]
                }
            ),
        ),
        (
            "traceback",
            _nb(
                {
                    "outputs": [
                        {
                            "output_type": "error",
                            "ename": "E",
                            "evalue": "bad",
                            "traceback": [f"KeyError: {GH}"],
                        }
                    ]
                }
            ),
        ),
        (
            "attachment",
            _nb(
                {
                    "cell_type": "markdown",
                    "attachments": {
                        "notes.txt": {"text/plain": base64.b64encode(GH.encode()).decode()}
                    },
                }
            ),
        ),
        (
            "image attachment",
            _nb(
                {
                    "cell_type": "markdown",
                    "attachments": {
                        "x.png": {
                            "image/png": base64.b64encode(
                                b"\x89PNG\r\n\x1a\n\x00\x00tEXt\x00" + HF.encode() + b"\x00"
                            ).decode()
                        }
                    },
                }
            ),
        ),
        ("cell metadata", _nb({"metadata": {"hf_token": HF}})),
        ("unknown cell key", _nb({"x-notes": {"deploy": f"token {GH}"}})),
        ("notebook metadata", _nb({}, {"deploy": {"token": GH}})),
    ],
)
def test_attack_secret_in_notebook_outputs_attachments_and_metadata(
    tmp_path: Path, where: str, notebook: str
) -> None:
    (tmp_path / "analysis.ipynb").write_text(notebook)
    code, controls = _check(tmp_path)
    assert [s["path"] for s in code["secrets"]] == ["analysis.ipynb"], where
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_binary_and_wide_files_without_secrets_stay_clean(tmp_path: Path) -> None:
    rng = random.Random(7)
    (tmp_path / "noise.bin").write_bytes(rng.randbytes(2_000_000))
    (tmp_path / "model.onnx").write_bytes(
        b"\x08\x07\x12\x07pytorch\x1a\x052.1.0" + rng.randbytes(50_000)
    )
    (tmp_path / "readme.txt").write_bytes("A plain note about the key idea.\n".encode("utf-16-le"))
    (tmp_path / "nb.ipynb").write_text(
        _nb(
            {
                "outputs": [
                    {
                        "output_type": "display_data",
                        "data": {"image/png": base64.b64encode(rng.randbytes(30_000)).decode()},
                        "metadata": {"needs_background": "light"},
                    }
                ]
            },
            {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        )
    )
    code, controls = _check(tmp_path)
    assert code["secrets"] == []
    assert code["secrets_not_searched"] == []
    assert controls[SECRETS].status is ControlStatus.PASS


def test_attack_secret_in_attachment_of_a_notebook_larger_than_the_whole_file_limit(
    tmp_path: Path, small_limits: None
) -> None:
    image = base64.b64encode(random.Random(3).randbytes(200_000)).decode()
    secret = base64.b64encode(f"deploy with {GH}\n".encode()).decode()
    notebook = _nb(
        {
            "cell_type": "markdown",
            "attachments": {"a.png": {"image/png": image}, "notes.txt": {"text/plain": secret}},
        }
    )
    (tmp_path / "big.ipynb").write_text(notebook)
    code, controls = _check(tmp_path)
    assert [(s["path"], s["cell"]) for s in code["secrets"]] == [("big.ipynb", 0)]
    assert code["secrets_not_searched"] == []
    assert controls[SECRETS].status is ControlStatus.FAIL


def _safetensors(path: Path, metadata: dict[str, str], size: int) -> None:
    """A real safetensors file: one float32 tensor of ``size`` bytes and ``metadata``."""
    import struct

    header = json.dumps(
        {
            "__metadata__": metadata,
            "w": {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size // 4 * 4]},
        }
    ).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(size // 4 * 4))


def test_large_model_weights_are_searched_where_metadata_lives(tmp_path: Path) -> None:
    # A model the scanner recognises and examines: its header (metadata) is searched, the
    # tensor data past the first chunk is listed as not searched but does not fail the gate.
    _safetensors(tmp_path / "model.safetensors", {"note": "ok"}, 6 * 1024 * 1024)
    code, controls = _check(tmp_path)
    assert code["secrets_not_searched"] == []
    assert [r["path"] for r in code["secrets_not_searched_models"]] == ["model.safetensors"]
    assert controls[SECRETS].status is ControlStatus.PASS


def test_attack_secret_in_large_model_metadata_is_found(tmp_path: Path) -> None:
    _safetensors(tmp_path / "model.safetensors", {"hub": f"token={HF}"}, 6 * 1024 * 1024)
    code, controls = _check(tmp_path)
    assert "model.safetensors" in {s["path"] for s in code["secrets"]}
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_attack_large_file_not_a_model_still_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bytes the model scanner does not recognise as a model get no exemption: the unsearched
    # tail (past a per-file cap lowered for the test) is a finding.
    monkeypatch.setattr(
        _code, "DEFAULT_LIMITS", _code.DEFAULT_LIMITS.replace(max_secret_file_bytes=5 * 1024 * 1024)
    )
    (tmp_path / "blob.dat").write_bytes(b"a\n" * (3 * 1024 * 1024))
    code, controls = _check(tmp_path)
    assert [r["path"] for r in code["secrets_not_searched"]] == ["blob.dat"]
    assert code["secrets_not_searched_models"] == []
    assert controls[SECRETS].status is ControlStatus.FAIL
