"""`scan --ray` and `sign --ray`: a local Ray cluster gives the local report and signature.

One local cluster (2 CPUs, no dashboard, bound to loopback) is started for the module; the CLI
and the executors find it initialised and reuse it. Ray is an optional extra (`mltrust[ray]`),
installed in the test environment; without it these tests are skipped.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from mltrust.cli._main import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, main
from mltrust.errors import ConfigError, InputError
from mltrust.scan import scan_paths

ray = pytest.importorskip("ray")

from mltrust.attest import PinnedKeys, generate_keypair, sign, verify  # noqa: E402
from mltrust.executors import Failed  # noqa: E402
from mltrust.executors._ray import RayExecutor, run_checked  # noqa: E402

_SYSTEM = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00idq\x00\x85q\x01Rq\x02."


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    # The workers cannot import this test module: send its helpers by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def _registry(root: Path, count: int = 100) -> Path:
    """A registry of several models: malicious and benign pickles, unknown bytes, a symlink."""
    for m in range(4):
        model = root / f"model-{m}" / "weights"
        model.mkdir(parents=True)
        for i in range(count // 4):
            data = _SYSTEM if i % 9 == 0 else pickle.dumps({"layer": i, "w": list(range(i))})
            (model / f"{i:03d}.pkl").write_bytes(data)
        (model.parent / "README.bin").write_bytes(b"\x00\x01 not a model")
    (root / "model-0" / "escape.pkl").symlink_to("/etc/passwd")
    return root


_TIMING = re.compile(rb'"seconds": [0-9.e-]+')


def _scan_json(args: list[str], out: Path) -> tuple[int, bytes]:
    code = main(["scan", *args, "-f", "json", "--digest", "-o", str(out), "--no-progress"])
    return code, _TIMING.sub(b'"seconds": 0', out.read_bytes())


def test_scan_ray_report_is_the_local_report(tmp_path: Path) -> None:
    reg = _registry(tmp_path / "reg")
    local_code, local = _scan_json([str(reg)], tmp_path / "local.json")
    jobs_code, jobs = _scan_json([str(reg), "-j", "2"], tmp_path / "jobs.json")
    ray_code, on_ray = _scan_json([str(reg), "--ray", "local"], tmp_path / "ray.json")
    assert local_code == jobs_code == ray_code == EXIT_FINDINGS
    assert on_ray == local == jobs  # byte for byte, timings apart
    doc = json.loads(on_ray)
    assert doc["summary"]["files"] == 105  # 100 pickles, 4 unknown files, 1 symlink reported
    assert sum(1 for f in doc["files"] if f["findings"]) >= 13


def test_scan_ray_bare_flag_means_local(tmp_path: Path) -> None:
    reg = _registry(tmp_path / "reg", count=8)
    code, on_ray = _scan_json([str(reg), "--ray"], tmp_path / "ray.json")
    assert code == EXIT_FINDINGS and json.loads(on_ray)["summary"]["files"] == 13
    # Before the paths, the bare flag would take the registry as its address: refused.
    assert main(["scan", "--ray", str(reg), str(reg)]) == EXIT_ERROR


def _die_once(marker: str, fn: Callable[[Any], Any], item: Any) -> Any:
    """Kill the worker process the first time any task runs (a node or OOM kill)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return fn(item)
    os.close(fd)
    os._exit(1)


class _KillingRay(RayExecutor):
    """The real Ray executor whose first task kills its worker."""

    def __init__(self, marker: Path, **kw: Any) -> None:
        super().__init__("local", **kw)
        self.marker = str(marker)

    def map_unordered(
        self, fn: Callable[[Any], Any], items: Sequence[Any]
    ) -> Iterator[tuple[int, Any]]:
        return super().map_unordered(partial(_die_once, self.marker, fn), items)


def test_worker_killed_mid_scan_is_retried(tmp_path: Path) -> None:
    reg = _registry(tmp_path / "reg", count=40)
    local = scan_paths([reg])
    again = scan_paths([reg], executor=_KillingRay(tmp_path / "m1", max_retries=2))
    assert (tmp_path / "m1").exists()  # a worker really died
    assert [(r.path, r.status, r.findings) for r in again.files] == [
        (r.path, r.status, r.findings) for r in local.files
    ]


def test_worker_killed_without_retries_fails_closed(tmp_path: Path) -> None:
    reg = _registry(tmp_path / "reg", count=40)
    report = scan_paths([reg], executor=_KillingRay(tmp_path / "m2", max_retries=0))
    lost = [r for r in report.files if r.status.value == "error" and r.reason != "symlink"]
    assert lost, "files of the lost batch must be reported, not dropped"
    assert report.errored
    assert len(report.files) == len(scan_paths([reg]).files)
    assert all(r.findings for r in lost)


def test_worker_with_another_mltrust_version_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"the driver 0\.0\.0-other"):
        run_checked(len, [1], "0.0.0-other")
    # Through the cluster: the task fails with the worker's ConfigError, handed back as such.
    wrong = partial(run_checked, len, version="0.0.0-other")
    [(index, outcome)] = list(RayExecutor("local").map_unordered(wrong, [[1]]))
    assert index == 0 and isinstance(outcome, Failed)
    assert isinstance(outcome.error, ConfigError)


class _Recording(RayExecutor):
    """Records the pickled size of every batch sent to the cluster."""

    sizes: list[int]

    def map_unordered(
        self, fn: Callable[[Any], Any], items: Sequence[Any]
    ) -> Iterator[tuple[int, Any]]:
        self.sizes = [len(pickle.dumps(item)) for item in items]
        return super().map_unordered(fn, items)


def _model(root: Path) -> Path:
    root.mkdir()
    (root / "weights.bin").write_bytes(os.urandom(1 << 20) * 24)  # 24 MiB
    (root / "sub").mkdir()
    for i in range(70):
        (root / "sub" / f"part-{i:02d}.json").write_bytes(b'{"i": %d}' % i)
    return root


def test_sign_ray_signature_is_the_local_signature(tmp_path: Path) -> None:
    model = _model(tmp_path / "model")
    pair = generate_keypair(tmp_path / "k", key_type="ed25519", passphrase=None)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    local = sign(model, key=pair.private_path, output=tmp_path / "local.sig", issued_at=when)
    executor = _Recording("local")
    remote = sign(
        model, key=pair.private_path, output=tmp_path / "ray.sig", issued_at=when, executor=executor
    )
    assert remote.read_bytes() == local.read_bytes()  # Ed25519 is deterministic: same bytes
    # Paths and offsets travel, never contents: every batch is small whatever the file size.
    assert len(executor.sizes) >= 2 and max(executor.sizes) < 16_384
    verify(model, trust=PinnedKeys(pair.public_path), signature=remote)


def test_sign_ray_cli_verifies_and_tamper_is_caught(tmp_path: Path) -> None:
    model = _model(tmp_path / "model")
    generate_keypair(tmp_path / "k", key_type="ecdsa-p256", passphrase=None)
    args = ["sign", str(model), "--key", str(tmp_path / "k.key"), "--no-progress", "--ray"]
    assert main(args) == EXIT_CLEAN
    assert main(["verify", str(model), "--key", str(tmp_path / "k.pub")]) == EXIT_CLEAN
    (model / "sub" / "part-03.json").write_bytes(b'{"i": 4}')
    assert main(["verify", str(model), "--key", str(tmp_path / "k.pub")]) == EXIT_FINDINGS


class _Vanishing(RayExecutor):
    """A file is removed after the listing, before the tasks hash it (a racing writer)."""

    def __init__(self, victim: Path) -> None:
        super().__init__("local")
        self.victim = victim

    def map_unordered(
        self, fn: Callable[[Any], Any], items: Sequence[Any]
    ) -> Iterator[tuple[int, Any]]:
        self.victim.unlink()
        return super().map_unordered(fn, items)


def test_file_removed_while_hashing_on_ray_signs_nothing(tmp_path: Path) -> None:
    model = _model(tmp_path / "model")
    pair = generate_keypair(tmp_path / "k", key_type="ed25519", passphrase=None)
    out = tmp_path / "x.sig"
    victim = model / "sub" / "part-05.json"
    with pytest.raises(InputError, match=r"part-05\.json"):
        sign(model, key=pair.private_path, output=out, executor=_Vanishing(victim))
    assert not out.exists()
