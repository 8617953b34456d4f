"""Red-team bypasses of the secret search (issue 11): a secret inside compressed content (gzip,
compressed tar, deflated/bzip2/lzma zip members, nested), in UTF-32 text, in Python source
spelled by implicit concatenation, escapes or ``+``, in a symbolic link's target, and in the
parts of a notebook a JSON reader drops or the parsed view ignores. Tokens are assembled at run
time so this file holds none."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from mltrust.evidence import CollectContext, _code, collect_evidence
from mltrust.policy import ControlStatus, evaluate, load_profile

# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
HF = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
SECRETS = "no-committed-secrets"
LINE = f"deploy with token {GH}\n".encode()


def _check(root: Path):  # type: ignore[no-untyped-def]
    bundle = collect_evidence(CollectContext(root))
    verdict = evaluate(bundle.document, load_profile("default"), waivers=())
    code = bundle.document["code"]
    return code, {r.control.id: r for r in verdict.results}


def _paths(code: dict) -> set[str]:  # type: ignore[type-arg]
    return {s["path"] for s in code["secrets"]}


def _not_searched(code: dict) -> set[str]:  # type: ignore[type-arg]
    return {r["path"] for r in code["secrets_not_searched"]}


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


# -- 1. compressed content -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("notes.txt.gz", gzip.compress(LINE)),
        ("notes.dat", gzip.compress(LINE)),  # gzip by its magic, whatever the name
        ("notes.bz2", bz2.compress(LINE)),
        ("notes.xz", lzma.compress(LINE)),
        ("bundle.tar.gz", _tar({"conf/app.env": LINE}, "w:gz")),
        ("bundle.tgz", _tar({"conf/app.env": LINE}, "w:gz")),
        ("bundle.tar.bz2", _tar({"conf/app.env": LINE}, "w:bz2")),
        ("bundle.tar.xz", _tar({"conf/app.env": LINE}, "w:xz")),
        ("bundle.zip", _zip({"conf/app.env": LINE})),
        ("bundle-bz2.zip", _zip({"conf/app.env": LINE}, zipfile.ZIP_BZIP2)),
        ("bundle-lzma.zip", _zip({"conf/app.env": LINE}, zipfile.ZIP_LZMA)),
        ("pkg-1.0-py3-none-any.whl", _zip({"pkg/_conf.py": b"T = '" + GH.encode() + b"'\n"})),
        ("lib.jar", _zip({"META-INF/app.properties": LINE})),
        ("report.docx", _zip({"word/document.xml": b"<w:t>" + LINE + b"</w:t>"})),
        ("nb.zip", _zip({"a.ipynb": json.dumps({"cells": [], "metadata": {"t": GH}}).encode()})),
        # nested: a gzip inside a tar inside a zip
        ("deep.zip", _zip({"in.tar": _tar({"x/notes.gz": gzip.compress(LINE)})})),
        # a zip behind a shebang (a zip application), by its end-of-directory record
        (
            "tool",
            b"#!/usr/bin/env python3\n" + _zip({"__main__.py": b"T = '" + GH.encode() + b"'"}),
        ),
        ("pkg.tar", _tar({"a/notes.gz": gzip.compress(LINE)}, "w")),
        # a deflated member holding a bzip2 stream
        ("deep2.zip", _zip({"notes.bz2": bz2.compress(LINE)})),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_attack_secret_inside_compressed_content_is_found(
    tmp_path: Path, name: str, payload: bytes
) -> None:
    (tmp_path / name).write_bytes(payload)
    code, controls = _check(tmp_path)
    assert any(p == name or p.startswith(name + ":") for p in _paths(code)), code["secrets"]
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_attack_secret_in_a_large_compressed_file_is_found(tmp_path: Path) -> None:
    # Larger than the whole-file read: incompressible noise, then the secret.
    noise = random.Random(5).randbytes(5 * 1024 * 1024)
    (tmp_path / "dump.zip").write_bytes(_zip({"noise.bin": noise, "z/conf.env": LINE}))
    code, controls = _check(tmp_path)
    assert "dump.zip:z/conf.env" in _paths(code)
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_attack_zip_bomb_is_not_searched_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        _code, "DEFAULT_LIMITS", _code.DEFAULT_LIMITS.replace(max_secret_file_bytes=1024 * 1024)
    )
    (tmp_path / "bomb.zip").write_bytes(_zip({"zeros.txt": bytes(20 * 1024 * 1024)}))
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(bytes(20 * 1024 * 1024)))
    code, controls = _check(tmp_path)
    assert {"bomb.zip:zeros.txt", "bomb.gz"} <= _not_searched(code)
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_attack_encrypted_zip_member_is_not_searched_and_fails(tmp_path: Path) -> None:
    data = bytearray(_zip({"secret.txt": LINE}, zipfile.ZIP_STORED))
    # set the "encrypted" flag in the local header and the central directory
    data[6] |= 1
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8] |= 1
    (tmp_path / "locked.zip").write_bytes(bytes(data))
    code, controls = _check(tmp_path)
    assert "locked.zip:secret.txt" in _not_searched(code)
    assert controls[SECRETS].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("cut.gz", gzip.compress(random.Random(1).randbytes(50_000))[:20_000]),
        ("bad.tar.gz", b"\x1f\x8b\x08\x00" + b"\xff" * 200),
        ("named.zip", b"this is not a zip at all, but its name says so\n"),
        ("deep.gz", gzip.compress(gzip.compress(gzip.compress(gzip.compress(LINE))))),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_attack_unreadable_compressed_content_fails_closed(
    tmp_path: Path, name: str, payload: bytes
) -> None:
    (tmp_path / name).write_bytes(payload)
    code, controls = _check(tmp_path)
    assert any(p == name or p.startswith(name + ":") for p in _not_searched(code)), code
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_attack_zip_member_with_bad_crc_fails_closed(tmp_path: Path) -> None:
    data = bytearray(_zip({"notes.txt": b"hello world " * 100}))
    cd = data.rfind(b"PK\x01\x02")
    data[16] ^= 0xFF  # local header CRC
    data[cd + 16] ^= 0xFF  # central directory CRC
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    code, controls = _check(tmp_path)
    assert "crc.zip:notes.txt" in _not_searched(code)
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_clean_archives_stay_clean(tmp_path: Path) -> None:
    (tmp_path / "docs.tar.gz").write_bytes(_tar({"README": b"hello\n" * 100}, "w:gz"))
    (tmp_path / "pkg.whl").write_bytes(_zip({"pkg/__init__.py": b"x = 1\n"}))
    code, controls = _check(tmp_path)
    assert code["secrets"] == [] and code["secrets_not_searched"] == []
    assert controls[SECRETS].status is ControlStatus.PASS


# -- 2. UTF-32 -------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-32-le", "utf-32-be", "utf-32"])
def test_attack_utf32_text_is_decoded(tmp_path: Path, codec: str) -> None:
    text = f"# settings\nname = 'demo'\nexport GITHUB_TOKEN={GH}\n"
    (tmp_path / "settings.conf").write_bytes(text.encode(codec))
    code, controls = _check(tmp_path)
    assert {(s["path"], s["line"]) for s in code["secrets"]} == {("settings.conf", 3)}
    assert controls[SECRETS].status is ControlStatus.FAIL


@pytest.mark.parametrize("bom", [b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"])
def test_attack_wide_bom_in_front_of_ascii_text(tmp_path: Path, bom: bytes) -> None:
    (tmp_path / "notes.txt").write_bytes(bom + f"x = 1\nexport GITHUB_TOKEN={GH}\n".encode())
    code, controls = _check(tmp_path)
    assert "notes.txt" in _paths(code)
    assert controls[SECRETS].status is ControlStatus.FAIL


# -- 3. Python string constants --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line"),
    [
        (f'x = 1\nTOKEN = "{GH[:4]}" "{GH[4:]}"\n', 2),
        (f'x = 1\nTOKEN = (\n    "{GH[:10]}"\n    "{GH[10:]}"\n)\n', 3),
        ("x = 1\nTOKEN = '" + "".join(f"\\x{ord(c):02x}" for c in GH) + "'\n", 2),
        ("x = 1\nTOKEN = '" + "".join(f"\\u{ord(c):04x}" for c in GH) + "'\n", 2),
        ("x = 1\nTOKEN = '" + "".join(f"\\{ord(c):03o}" for c in GH) + "'\n", 2),
        (f'x = 1\nTOKEN = "{GH[:4]}" + "{GH[4:20]}" + "{GH[20:]}"\n', 2),
        (f'x = 1\nTOKEN = "".join(["{GH[:4]}", "{GH[4:]}"])\n', 2),
        (f'x = 1\nTOKEN = f"{GH[:4]}" f"{GH[4:]}"\n', 2),
    ],
)
def test_attack_secret_split_in_python_literals_is_found(
    tmp_path: Path, source: str, line: int
) -> None:
    (tmp_path / "settings.py").write_text(source)
    code, controls = _check(tmp_path)
    assert ("settings.py", line) in {(s["path"], s["line"]) for s in code["secrets"]}
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_attack_secret_split_in_notebook_code_cell_is_found(tmp_path: Path) -> None:
    cell = {
        "cell_type": "code",
        "metadata": {},
        "outputs": [],
        "source": ["x = 1\n", f'TOKEN = "{GH[:4]}" "{GH[4:]}"\n'],
    }
    doc = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "nb.ipynb").write_text(json.dumps(doc))
    code, controls = _check(tmp_path)
    assert [(s["path"], s["cell"], s["line"]) for s in code["secrets"]] == [("nb.ipynb", 0, 2)]
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_split_literal_found_once(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text(f'TOKEN = "{GH}"\n')
    code, _ = _check(tmp_path)
    assert len(code["secrets"]) == 1


# -- 4. symbolic link targets ----------------------------------------------------------------


def test_attack_secret_in_a_symlink_target_is_found(tmp_path: Path) -> None:
    os.symlink(f"/tmp/token={GH}", tmp_path / "creds")
    code, controls = _check(tmp_path)
    assert "creds" in _paths(code)
    assert controls[SECRETS].status is ControlStatus.FAIL


# -- 5. notebooks ----------------------------------------------------------------------------

_CELL = '{"cell_type": "code", "metadata": {}, "source": ["x = 1"], "outputs": []}'


def test_attack_secret_in_a_duplicate_notebook_key_fails(tmp_path: Path) -> None:
    raw = (
        '{"cells": [' + _CELL + '], "metadata": {"deploy": {"token": "' + GH + '"}}, '
        '"metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    (tmp_path / "dup.ipynb").write_text(raw)
    code, controls = _check(tmp_path)
    assert "dup.ipynb" in _paths(code)
    assert "dup.ipynb" in _not_searched(code)
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_duplicate_notebook_key_without_secret_still_fails(tmp_path: Path) -> None:
    raw = '{"cells": [' + _CELL + '], "metadata": {}, "metadata": {}, "nbformat": 4}'
    (tmp_path / "dup.ipynb").write_text(raw)
    code, controls = _check(tmp_path)
    assert "dup.ipynb" in _not_searched(code)
    assert controls[SECRETS].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "cell",
    [
        {"id": f"token={GH}"},
        {"outputs": [{"output_type": "stream", "name": f"token={GH}", "text": ["ok\n"]}]},
    ],
)
def test_attack_secret_in_notebook_fields_the_parsed_view_skips(
    tmp_path: Path,
    cell: dict,  # type: ignore[type-arg]
) -> None:
    base = {"cell_type": "code", "metadata": {}, "source": ["x = 1\n"], "outputs": []}
    doc = {"cells": [base | cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "nb.ipynb").write_text(json.dumps(doc))
    code, controls = _check(tmp_path)
    assert "nb.ipynb" in _paths(code)
    assert controls[SECRETS].status is ControlStatus.FAIL


def test_notebook_secret_reported_once(tmp_path: Path) -> None:
    base = {"cell_type": "code", "metadata": {}, "source": [f'T = "{GH}"\n'], "outputs": []}
    doc = {"cells": [base], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "nb.ipynb").write_text(json.dumps(doc))
    code, _ = _check(tmp_path)
    assert [(s["path"], s["cell"]) for s in code["secrets"]] == [("nb.ipynb", 0)]


def test_hostile_archives_never_crash_the_unpacker() -> None:
    """Mutated and truncated gzip, bzip2, xz, tar and zip bytes: pieces or reasons, never an
    exception, and never more output than the allowance."""
    from mltrust.evidence._unpack import Allowance, unpack

    rng = random.Random(11)
    seeds = [
        gzip.compress(LINE * 50),
        bz2.compress(LINE * 50),
        lzma.compress(LINE * 50),
        _tar({"a.gz": gzip.compress(LINE), "b.txt": LINE}, "w:gz"),
        _zip({"a.txt": LINE * 50, "b.zip": _zip({"c.bz2": bz2.compress(LINE)})}),
    ]
    for seed in seeds:
        for _ in range(60):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[: rng.randrange(1, len(data))]
            allowance = Allowance(64 * 1024)
            pieces = list(unpack("x.bin", bytes(data), allowance))
            assert allowance.used <= 64 * 1024
            assert all(p.data is not None or p.why for p in pieces)
