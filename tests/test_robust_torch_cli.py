"""PyTorch models from `mltrust robustness`: TorchScript, torch.export programs and state dicts
with a named architecture, each scanned first; hostile checkpoints are still refused."""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pandas as pd
import pytest

from mltrust.cli._main import main

torch = pytest.importorskip("torch")


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


@pytest.fixture
def data_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(60, 4))
    with torch.no_grad():
        y = _net()(torch.tensor(X, dtype=torch.float32)).argmax(1).numpy()
    frame = pd.DataFrame(X, columns=list("abcd"))
    frame["label"] = y
    frame.to_csv(tmp_path / "d.csv", index=False)
    return tmp_path / "d.csv"


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _robust(capsys, model, data, *extra):
    return _run(
        capsys, "robustness", model, "--data", data, "--eps", "0.05", "--clip", "0,1",
        "--steps", "5", "--restarts", "1", "-f", "json", *extra,
    )  # fmt: skip


def test_torchscript_file_is_attacked(capsys, tmp_path, data_csv):
    torch.jit.save(torch.jit.script(_net()), tmp_path / "m.pt")
    rc, out, err = _robust(capsys, tmp_path / "m.pt", data_csv)
    assert rc == 0, err
    body = json.loads(out)
    assert body["model"] == "torch" and body["clean_accuracy"] == 1.0
    assert body["threat_model"]["attacks_run"][0] == "pgd(ce+margin)"


def test_torch_export_program_is_attacked(capsys, tmp_path, data_csv):
    batch = torch.export.Dim("batch")  # a dynamic batch dimension: any number of rows
    program = torch.export.export(_net(), (torch.zeros(2, 4),), dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp_path / "m.pt2")
    rc, out, err = _robust(capsys, tmp_path / "m.pt2", data_csv)
    assert rc == 0, err
    assert json.loads(out)["clean_accuracy"] == 1.0


def test_state_dict_needs_and_takes_a_named_architecture(capsys, tmp_path, data_csv, monkeypatch):
    torch.save(_net().state_dict(), tmp_path / "sd.pt")
    rc, _, err = _robust(capsys, tmp_path / "sd.pt", data_csv)
    assert rc == 2 and "only weights" in err and "--arch" in err
    (tmp_path / "archpkg_i15.py").write_text(
        textwrap.dedent(
            """
            import torch

            def Net(hidden=8):
                return torch.nn.Sequential(
                    torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3)
                )
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rc, out, err = _robust(capsys, tmp_path / "sd.pt", data_csv, "--arch", "archpkg_i15:Net")
    assert rc == 0, err and json.loads(out)["clean_accuracy"] == 1.0
    rc, _, err = _robust(
        capsys, tmp_path / "sd.pt", data_csv, "--arch", "archpkg_i15:Net",
        "--arch-kwargs", '{"hidden": 5}',
    )  # fmt: skip
    assert rc == 2 and "does not fit --arch" in err


class _Payload:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_hostile_checkpoint_is_refused_before_loading(capsys, tmp_path, data_csv, canary):
    torch.save({"w": torch.zeros(2), "x": _Payload(str(canary))}, tmp_path / "evil.pt")
    rc, _, err = _robust(capsys, tmp_path / "evil.pt", data_csv, "--arch", "torch.nn:Linear")
    assert rc != 0 and "refused" in err
