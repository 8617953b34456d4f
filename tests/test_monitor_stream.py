"""Streaming windows (CSV, the gateway's audit log) and the `mltrust monitor` CLI."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from mltrust.cli._main import main
from mltrust.errors import InputError
from mltrust.monitor import iter_audit_windows, iter_table_windows, stream_drift


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small matrices: one BLAS/OpenMP thread is faster, above all on a shared, busy machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(2)
    cols = ["a", "b", "c"]
    pd.DataFrame(rng.normal(size=(1500, 3)), columns=cols).to_csv(tmp_path / "ref.csv", index=False)
    cur = rng.normal(size=(2500, 3))
    cur[1000:, 1] += 0.6  # drift starts at row 1000
    pd.DataFrame(cur, columns=cols).to_csv(tmp_path / "cur.csv", index=False)
    return tmp_path


def test_csv_windows_are_chunked_and_drift_located(files):
    wins = list(iter_table_windows(files / "cur.csv", 1000))
    assert [len(w) for w in wins] == [1000, 1000, 500]
    ref = pd.read_csv(files / "ref.csv")
    res = list(stream_drift(ref, iter_table_windows(files / "cur.csv", 1000), mmd=False))
    assert [w.report.drift for w in res] == [False, True, True]
    assert [f.name for f in res[1].report.drifted] == ["b"]
    assert res[2].first_row == 2000 and res[2].rows == 500


def _audit_db(path, rows, *, with_inputs=True):
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL,"
        " prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL)"
    )
    for i, batch in enumerate(rows, start=1):
        entry = {"seq": i, "model": "m", "input_sha256": "x" * 64}
        if with_inputs:
            entry["inputs"] = {"input-0": batch.tolist()}
        db.execute(
            "INSERT INTO audit VALUES (?, ?, ?, ?)", (i, json.dumps(entry), "0" * 64, "0" * 64)
        )
    db.execute("INSERT INTO audit VALUES (?, ?, ?, ?)", (len(rows) + 1, "not json", "0", "0"))
    db.commit()
    db.close()


def test_audit_log_windows(tmp_path):
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(7, 3)) for _ in range(30)]  # 210 rows
    _audit_db(tmp_path / "audit.db", batches)
    wins = list(iter_audit_windows(tmp_path / "audit.db", 100))
    assert [w.shape for w in wins] == [(100, 3), (100, 3), (10, 3)]
    assert np.allclose(np.vstack(wins), np.vstack(batches))
    with pytest.raises(InputError):  # no inputs recorded for that model
        list(iter_audit_windows(tmp_path / "audit.db", 100, model="other"))


def test_audit_log_without_inputs_says_so(tmp_path):
    _audit_db(tmp_path / "audit.db", [np.zeros((2, 3))], with_inputs=False)
    with pytest.raises(InputError, match="records no raw inputs"):
        list(iter_audit_windows(tmp_path / "audit.db", 10))


def test_cli_drift_stream_calibrate_score(files, capsys):
    rc = main(
        [
            "monitor",
            "drift",
            "--reference",
            str(files / "ref.csv"),
            "--current",
            str(files / "cur.csv"),
            "--format",
            "json",
            "--html",
            str(files / "d.html"),
        ]
    )
    body = json.loads(capsys.readouterr().out)
    assert rc == 1 and body["drifted_features"] == ["b"]
    assert [f["rule_id"] for f in body["findings"]] == ["MLT-MON-001"]
    assert "<svg" in (files / "d.html").read_text()
    rc = main(
        [
            "monitor",
            "drift",
            "--reference",
            str(files / "ref.csv"),
            "--current",
            str(files / "ref.csv"),
            "--no-mmd",
        ]
    )
    assert rc == 0 and "drift: no" in capsys.readouterr().out
    rc = main(
        [
            "monitor",
            "stream",
            "--reference",
            str(files / "ref.csv"),
            "--stream",
            str(files / "cur.csv"),
            "--window",
            "1000",
            "--format",
            "json",
            "--no-mmd",
        ]
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rc == 1 and [x["drift"] for x in lines] == [False, True, True]
    rc = main(
        [
            "monitor",
            "calibrate",
            "--reference",
            str(files / "ref.csv"),
            "--scorer",
            "mahalanobis",
            "--far",
            "0.05",
            "--save",
            str(files / "s.npz"),
            "--format",
            "json",
        ]
    )
    body = json.loads(capsys.readouterr().out)
    assert rc == 0 and 0 < body["calibration_false_alarm_rate"] <= 0.06
    rc = main(
        [
            "monitor",
            "score",
            "--scorer",
            str(files / "s.npz"),
            "--data",
            str(files / "cur.csv"),
            "--format",
            "json",
        ]
    )
    body = json.loads(capsys.readouterr().out)
    assert rc == 1 and body["rows"] == 2500 and 0 < body["alerts"] < 2500
    assert body["findings"][0]["rule_id"] == "MLT-MON-002"


def test_cli_stream_audit_db(tmp_path, files, capsys):
    rng = np.random.default_rng(2)
    _audit_db(tmp_path / "audit.db", [rng.normal(size=(10, 3)) for _ in range(20)])
    rc = main(
        [
            "monitor",
            "stream",
            "--reference",
            str(files / "ref.csv"),
            "--audit-db",
            str(tmp_path / "audit.db"),
            "--window",
            "100",
            "--no-mmd",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and out.count("window") == 2
    rc = main(["monitor", "stream", "--reference", str(files / "ref.csv")])
    assert rc == 2


def _drift_cli(ref, cur, *extra):
    return main(["monitor", "drift", "--reference", str(ref), "--current", str(cur), *extra])


def test_cli_drift_stray_string_in_numeric_column_is_a_clear_error(tmp_path, capsys):
    rng = np.random.default_rng(5)
    pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)}).to_csv(
        tmp_path / "ref.csv", index=False
    )
    cur = pd.DataFrame({"a": rng.normal(size=50).astype(object), "b": rng.normal(size=50)})
    cur.loc[7, "a"] = "n/a?"
    cur.to_csv(tmp_path / "cur.csv", index=False)
    assert _drift_cli(tmp_path / "ref.csv", tmp_path / "cur.csv", "--no-mmd") == 2
    err = capsys.readouterr().err
    assert "column 'a'" in err and "n/a?" in err and "internal error" not in err


def test_cli_drift_reordered_columns_are_aligned_and_unknown_categorical_rejected(tmp_path, capsys):
    rng = np.random.default_rng(16)
    ref = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    cur[["c", "a", "b"]].to_csv(tmp_path / "cur.csv", index=False)
    rc = _drift_cli(tmp_path / "ref.csv", tmp_path / "cur.csv", "--no-mmd", "-f", "json")
    body = json.loads(capsys.readouterr().out)
    assert rc == 0 and [f["name"] for f in body["features"]] == ["a", "b", "c"]
    rc = _drift_cli(tmp_path / "ref.csv", tmp_path / "cur.csv", "--categorical", "nope")
    assert rc == 2 and "nope" in capsys.readouterr().err
    cur.rename(columns={"c": "d"}).to_csv(tmp_path / "cur2.csv", index=False)
    rc = _drift_cli(tmp_path / "ref.csv", tmp_path / "cur2.csv")
    err = capsys.readouterr().err
    assert rc == 2 and "['c']" in err and "['d']" in err


def test_cli_drift_html_shows_mmd_as_a_table(tmp_path, files, capsys):
    rc = _drift_cli(files / "ref.csv", files / "cur.csv", "--html", str(tmp_path / "d.html"))
    page = (tmp_path / "d.html").read_text()
    assert rc == 1 and "<h2>Multivariate tests</h2>" in page and "MMD (" in page
    assert '"p_value"' not in page  # no raw JSON dump
    capsys.readouterr()


def test_cli_drift_stray_string_in_the_reference_is_an_error_too(tmp_path, capsys):
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"a": rng.normal(size=80).astype(object), "b": rng.normal(size=80)})
    ref.loc[3, "a"] = "oops"
    ref.to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)}).to_csv(
        tmp_path / "cur.csv", index=False
    )
    assert _drift_cli(tmp_path / "ref.csv", tmp_path / "cur.csv", "--no-mmd") == 2
    err = capsys.readouterr().err
    assert "oops" in err and "reference" in err
    rc = _drift_cli(
        tmp_path / "ref.csv", tmp_path / "cur.csv", "--no-mmd", "--categorical", "a"
    )  # named categorical: compared as categories, no error
    assert rc in (0, 1)
    capsys.readouterr()
