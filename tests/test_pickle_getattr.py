"""``getattr(Class, "name")`` in pickles: judged by the method it reaches, in scanner and loader."""

from __future__ import annotations

import pickle

import pytest

import mltrust
from mltrust.errors import UnsafeModelError
from mltrust.findings import Severity
from mltrust.scan import scan_bytes

pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")


def _loud(data: bytes) -> list[str]:
    return [f.message for f in scan_bytes(data, "m.pkl").findings if f.severity >= Severity.MEDIUM]


def _getattr_pickle(module: str, cls: str, attr: str) -> bytes:
    def s(text: str) -> bytes:
        raw = text.encode()
        return b"\x8c" + bytes([len(raw)]) + raw

    return (
        b"\x80\x04"
        + s("builtins")
        + s("getattr")
        + b"\x93"
        + s(module)
        + s(cls)
        + b"\x93"
        + s(attr)
        + b"\x86R."
    )


@pytest.mark.parametrize("protocol", [2, 5])
def test_zoneinfo_dataframe_is_benign_and_loads(protocol: int) -> None:
    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3, tz="Europe/Berlin")})
    data = pickle.dumps(frame, protocol=protocol)
    assert _loud(data) == []
    assert mltrust.load(data).equals(frame)


def test_column_selector_pipeline_is_benign_and_loads() -> None:
    compose = pytest.importorskip("sklearn.compose")
    impute = pytest.importorskip("sklearn.impute")
    frame = pd.DataFrame({"a": [1.0, 2.0, None]})
    selector = compose.make_column_selector(dtype_include=np.number)
    model = compose.ColumnTransformer([("num", impute.SimpleImputer(), selector)]).fit(frame)
    data = pickle.dumps(model, protocol=5)
    assert _loud(data) == []
    assert mltrust.load(data).transform(frame).shape == (3, 1)


def test_getattr_reaching_a_dunder_of_an_allowed_class_is_critical() -> None:
    findings = scan_bytes(_getattr_pickle("zoneinfo", "ZoneInfo", "__globals__"), "m.pkl").findings
    assert any(f.severity is Severity.CRITICAL for f in findings)


def test_getattr_reaching_an_unlisted_method_is_flagged_and_refused_by_the_loader() -> None:
    data = _getattr_pickle("builtins", "str", "join")
    assert any("str.join" in m for m in _loud(data))
    # Defense in depth: even when the caller tolerates every finding, the unpickler refuses.
    with pytest.raises(UnsafeModelError, match="getattr reaches"):
        mltrust.load(data, fail_on=Severity.CRITICAL)


def test_getattr_on_a_disallowed_class_is_still_critical() -> None:
    data = _getattr_pickle("os", "system", "__call__")
    assert any(f.severity is Severity.CRITICAL for f in scan_bytes(data, "m.pkl").findings)


def test_checkpoint_with_argparse_namespace_is_benign() -> None:
    import argparse

    data = pickle.dumps({"args": argparse.Namespace(lr=0.1, layers=[2, 3]), "epoch": 4}, 5)
    assert _loud(data) == []
    assert mltrust.load(data)["args"].lr == 0.1


def test_legacy_whole_module_save_is_benign_and_payload_in_module_id_is_not() -> None:
    import io

    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    torch.save(net, buf, _use_new_zipfile_serialization=False)
    assert _loud(buf.getvalue()) == []
    # The same persistent-id shape naming os.system instead of a torch.nn class.
    evil = (
        b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.\x80\x02}q\x00."
        b"\x80\x02(X\x06\x00\x00\x00modulecposix\nsystem\nX\x01\x00\x00\x00f"
        b"X\x01\x00\x00\x00stQX\x02\x00\x00\x00id\x85R.\x80\x02]q\x00."
    )
    findings = scan_bytes(evil, "old.pt").findings
    assert any(f.severity is Severity.CRITICAL and "system" in f.message for f in findings)
