"""TorchScript archives (torch.jit.save): benign ones are quiet, payloads are still found."""

from __future__ import annotations

import io
import zipfile

import pytest

from mltrust.findings import Severity
from mltrust.scan import scan_bytes

torch = pytest.importorskip("torch")


def _scripted() -> bytes:
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buf)
    return buf.getvalue()


def _traced() -> bytes:
    net = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.Tanh())
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 2, 8)), buf)
    return buf.getvalue()


@pytest.mark.parametrize("build", [_scripted, _traced])
def test_benign_torchscript_has_no_medium_finding(build) -> None:  # type: ignore[no-untyped-def]
    result = scan_bytes(build(), "model.pt")
    assert result.formats and result.formats[0] == "zip"
    loud = [f for f in result.findings if f.severity >= Severity.MEDIUM]
    assert loud == [], [f.message for f in loud]


def _replace_member(archive: bytes, suffix: str, payload: bytes) -> bytes:
    """Replace the first member whose name ends with ``suffix`` (TorchScript may mangle class
    folder names when a module was scripted earlier in the process, so match loosely)."""
    out = io.BytesIO()
    replaced = False
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if not replaced and info.filename.endswith(suffix):
                data = payload
                replaced = True
            dst.writestr(info, data)
    assert replaced, f"no member ends with {suffix}"
    return out.getvalue()


_SYSTEM = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00idq\x00\x85q\x01Rq\x02."


def test_torchscript_data_pkl_with_os_system_is_critical() -> None:
    evil = _replace_member(_scripted(), "/data.pkl", _SYSTEM)
    result = scan_bytes(evil, "model.pt")
    assert any(f.severity is Severity.CRITICAL for f in result.findings)


def test_torchscript_debug_pkl_with_payload_is_critical() -> None:
    evil = _replace_member(_scripted(), ".debug_pkl", _SYSTEM)
    result = scan_bytes(evil, "model.pt")
    assert any(f.severity is Severity.CRITICAL for f in result.findings)


def test_torchscript_class_name_is_not_a_pass_outside_pytorch_archives() -> None:
    # A bare pickle naming a __torch__ class is judged normally (unknown import).
    payload = b"\x80\x02c__torch__.evil\nThing\nq\x00)\x81q\x01."
    result = scan_bytes(payload, "x.pkl")
    assert any(f.severity >= Severity.MEDIUM for f in result.findings)
