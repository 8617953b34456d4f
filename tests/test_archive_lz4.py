"""joblib's lz4 compression: benign files scan clean and load; payloads inside are found."""

from __future__ import annotations

from pathlib import Path

import pytest

import mltrust
from mltrust.errors import UnsafeModelError
from mltrust.findings import Severity
from mltrust.scan import scan_file

lz4_frame = pytest.importorskip("lz4.frame")
joblib = pytest.importorskip("joblib")
sklearn_linear = pytest.importorskip("sklearn.linear_model")

_SYSTEM = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00idq\x00\x85q\x01Rq\x02."


def test_benign_lz4_joblib_scans_clean_and_loads(tmp_path: Path) -> None:
    model = sklearn_linear.LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    path = tmp_path / "model.joblib"
    joblib.dump(model, path, compress="lz4")
    result = scan_file(path)
    assert "compressed" in result.formats
    assert not result.fails(Severity.MEDIUM), [f.message for f in result.findings]
    loaded = mltrust.load(path)
    assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]


def test_payload_in_lz4_frame_is_critical_and_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.joblib"
    path.write_bytes(lz4_frame.compress(_SYSTEM))
    result = scan_file(path)
    assert any(f.severity is Severity.CRITICAL for f in result.findings)
    with pytest.raises(UnsafeModelError):
        mltrust.load(path)


@pytest.mark.parametrize("method", ["lz4", "zlib", "gzip", "bz2", "xz", "lzma"])
def test_every_joblib_compression_loads_as_joblib_loads_it(method: str, tmp_path: Path) -> None:
    """joblib finds a dump's compression by content, whatever the file is called; so does
    mltrust.load (was: an lz4 dump whose bytes did not show 'NumpyArrayWrapper' was unpickled
    as a plain pickle and failed)."""
    np = pytest.importorskip("numpy")
    data = {"w": np.arange(64.0), "name": "linear"}
    path = tmp_path / "model.bin"  # a name that says nothing
    joblib.dump(data, path, compress=(method, 3))
    # mltrust: ignore[MLT-CODE-001] the real loader as oracle, on a file this test just wrote
    expected = joblib.load(path)  # the oracle
    loaded = mltrust.load(path)
    assert loaded.keys() == expected.keys() and loaded["name"] == expected["name"]
    assert (loaded["w"] == expected["w"]).all()
