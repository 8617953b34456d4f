"""Red-team bypass (check3 #14): zlib streams with a window other than 32 KiB (header ``08``
... ``68`` instead of ``78``) and raw LZMA ("alone") streams with properties other than joblib's
``5d`` decode with ``zlib.decompress`` / ``lzma.decompress`` but were not recognised, so a
secret inside was neither searched nor listed as not searched, and the model scanner did not
open them. Tokens are assembled at run time so this file holds none."""

from __future__ import annotations

import lzma
import random
import zlib
from pathlib import Path

import pytest

from mltrust.evidence import CollectContext, collect_evidence
from mltrust.policy import ControlStatus, evaluate, load_profile
from mltrust.scan.formats.compressed import sniff_compression

# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
LINE = f"deploy with token {GH}\n".encode()


def _zlib(data: bytes, wbits: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return c.compress(data) + c.flush()


def _lzma_alone(data: bytes, lc: int, lp: int, pb: int, dict_size: int = 1 << 16) -> bytes:
    f = {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}
    return lzma.compress(data, format=lzma.FORMAT_ALONE, filters=[f])


VARIANTS = [
    *[(f"zlib-wbits{w}", _zlib(LINE, w), "zlib") for w in range(9, 16)],
    ("lzma-000", _lzma_alone(LINE, 0, 0, 0), "lzma"),
    ("lzma-212", _lzma_alone(LINE, 2, 1, 2), "lzma"),
    ("lzma-odd-dict", _lzma_alone(LINE, 3, 0, 2, 12345 * 64), "lzma"),
    ("lzma-default", _lzma_alone(LINE, 3, 0, 2), "lzma"),
]


@pytest.mark.parametrize(("label", "payload", "kind"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_attack_header_variant_is_recognised(label: str, payload: bytes, kind: str) -> None:
    assert sniff_compression(payload) == kind
    assert sniff_compression(payload[:65536]) == kind


@pytest.mark.parametrize(("label", "payload", "kind"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_attack_secret_in_header_variant_stream_is_found(
    tmp_path: Path, label: str, payload: bytes, kind: str
) -> None:
    (tmp_path / "state.dat").write_bytes(payload)
    bundle = collect_evidence(CollectContext(tmp_path))
    verdict = evaluate(bundle.document, load_profile("default"), waivers=())
    code = bundle.document["code"]
    assert any(s["path"].startswith("state.dat") for s in code["secrets"]), code
    controls = {r.control.id: r for r in verdict.results}
    assert controls["no-committed-secrets"].status is ControlStatus.FAIL


def test_random_data_with_a_valid_looking_header_is_rarely_claimed() -> None:
    # False positives stay rare: noise behind a valid zlib header or an LZMA-alone shaped
    # header fails the trial decode and stays plain binary data.
    rng = random.Random(7)
    headers = [
        bytes([c, f])
        for c in range(0x08, 0x80, 0x10)
        for f in range(256)
        if (c * 256 + f) % 31 == 0 and not f & 0x20
    ]
    claimed = 0
    for _ in range(400):
        noise = rng.randbytes(8192)
        claimed += sniff_compression(rng.choice(headers) + noise) is not None
        lz = bytes([rng.randrange(225)]) + rng.randbytes(4) + b"\xff" * 8 + b"\0" + noise
        claimed += sniff_compression(lz) is not None
    assert claimed <= 4


def test_plain_files_are_not_taken_for_streams() -> None:
    # A text file, a little-endian zero-filled record, a pickle: no stream claimed.
    assert sniff_compression(b"hello world, this is text\n" * 10) is None
    assert sniff_compression(b"8" + b"\0" * 40) is None
    assert sniff_compression(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.") is None
