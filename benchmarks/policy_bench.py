"""Policy gate benchmark: per-control CEL evaluation time and a full `mltrust check`.

Targets (issue 4): < 1 ms per control; < 5 s for a full check of a small model project.
Also reports the time to import the PyPA advisory snapshot (when ../shared/data has it).

    .venv/bin/python benchmarks/policy_bench.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO.parent / "shared" / "data" / "pypa-advisory-db"
MALICIOUS_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def build_project(root: Path) -> Path:
    """A small model project: a scikit-learn model, code, a notebook, requirements, a card."""
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 4)), rng.integers(0, 2, 200)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)
    (root / "models").mkdir()
    joblib.dump(model, root / "models" / "model.joblib")
    (root / "models" / "backdoor.pkl").write_bytes(MALICIOUS_PICKLE)
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("\n".join(",".join(map(str, r)) for r in x))
    (root / "requirements.txt").write_text("jinja2==2.10\nscikit-learn==1.5.0\nnumpy>=1.26\n")
    (root / "README.md").write_text(
        "---\nlicense: mit\npipeline_tag: tabular-classification\n---\n# demo\n"
    )
    src = root / "src"
    src.mkdir()
    for i in range(20):
        (src / f"module_{i}.py").write_text(
            "import json\nimport joblib\n\n\ndef load(p):\n    return joblib.load(p)\n\n"
            + "\n".join(f"def f{j}(x):\n    return json.dumps(x) + '{j}'\n" for j in range(30))
        )
    return root


def bench_controls(project: Path, db: Path | None) -> None:
    from mltrust.evidence import CollectContext, collect_evidence
    from mltrust.policy import EvaluationContext, builtin_profiles, evaluate, load_profile

    bundle = collect_evidence(CollectContext(project, advisory_db=db))
    t0 = time.perf_counter()
    for _ in range(20):
        bound = EvaluationContext(bundle.document)
    bind_ms = (time.perf_counter() - t0) / 20 * 1e3
    print(f"binding the evidence document into CEL: {bind_ms:.2f} ms per document")
    print("per-control evaluation (CEL, compiled once; evidence of the demo project)")
    print(
        f"{'profile':16} {'controls':>8} {'mean µs':>9} {'p95 µs':>9} {'max µs':>9} "
        f"{'evaluate() µs/control':>22}"
    )
    for name in builtin_profiles():
        t0 = time.perf_counter()
        profile = load_profile(name)
        load_ms = (time.perf_counter() - t0) * 1e3
        samples: list[float] = []
        rounds = 200
        evaluate(bound, profile)
        t0 = time.perf_counter()
        for _ in range(rounds):
            verdict = evaluate(bound, profile)
            samples.extend(r.micros for r in verdict.results)
        whole = (time.perf_counter() - t0) / rounds / len(profile.controls) * 1e6
        samples.sort()
        p95 = samples[int(len(samples) * 0.95) - 1]
        print(
            f"{name:16} {len(profile.controls):>8} {statistics.fmean(samples):>9.1f} "
            f"{p95:>9.1f} {samples[-1]:>9.1f} {whole:>22.1f}   (load+compile {load_ms:.1f} ms)"
        )


def bench_check(project: Path, db: Path | None) -> None:
    exe = REPO / ".venv" / "bin" / "mltrust"
    cmd = [
        str(exe) if exe.exists() else "mltrust",
        "check",
        str(project),
        "--no-store",
        "-f",
        "json",
        "-o",
        str(project.parent / "out.json"),
    ]
    if db is not None:
        cmd += ["--db", str(db)]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t0)
        if proc.returncode not in (0, 1):
            print(proc.stderr, file=sys.stderr)
            raise SystemExit(f"check failed with exit {proc.returncode}")
    files = sum(1 for p in project.rglob("*") if p.is_file())
    print(
        f"\nfull `mltrust check` (new process, {files} files, exit {proc.returncode}): "
        f"best {min(times):.2f} s, median {statistics.median(times):.2f} s  (target < 5 s)"
    )

    from mltrust.evidence import CollectContext, all_collectors

    print("collector times (in-process):")
    ctx = CollectContext(project, advisory_db=db)
    for collector in all_collectors():
        t0 = time.perf_counter()
        if collector.applies(ctx):
            collector.collect(ctx)
        print(f"  {collector.name:11} {(time.perf_counter() - t0) * 1e3:8.1f} ms")


def bench_import(tmp: Path) -> Path | None:
    if not (SNAPSHOT / "vulns").is_dir():
        print("advisory snapshot not found; skipping the import benchmark")
        return None
    from mltrust.advisories import AdvisoryDB

    db = tmp / "advisories.db"
    stats = AdvisoryDB.import_osv(SNAPSHOT, db)
    print(
        f"advisory import: {stats.advisories} advisories from {stats.files} files in "
        f"{stats.seconds:.2f} s ({stats.files / stats.seconds:.0f} files/s)"
    )
    with AdvisoryDB.open(db) as adv:
        t0 = time.perf_counter()
        n = 0
        for name, version in [
            ("jinja2", "2.10"),
            ("werkzeug", "2.2.2"),
            ("django", "3.2.0"),
            ("pillow", "9.0.0"),
            ("numpy", "1.21.0"),
        ] * 20:
            adv._cache.clear()
            n += len(adv.matches(name, version))
        per = (time.perf_counter() - t0) / 100 * 1e3
        print(f"advisory lookup (uncached): {per:.2f} ms per package ({n} matches in 100)")
    return db


#: Dangerous ML code patterns (one file each): does the tool flag the line?
ML_PATTERNS = {
    "pickle.load": "import pickle\nm = pickle.load(open('m.pkl', 'rb'))\n",
    "joblib.load": "import joblib\nm = joblib.load('m.joblib')\n",
    "torch.load (no weights_only)": "import torch\nm = torch.load('m.pt')\n",
    "yaml.load (unsafe loader)": "import yaml\nc = yaml.load(open('c.yml'), Loader=yaml.Loader)\n",
    "numpy.load(allow_pickle=True)": "import numpy as np\n"
    "a = np.load('a.npy', allow_pickle=True)\n",
    "eval(f.read()) of a model URI": "with open(model_uri) as f:\n    model = eval(f.read())\n",
    "trust_remote_code=True": "from transformers import AutoModel\n"
    "m = AutoModel.from_pretrained('org/x', trust_remote_code=True)\n",
    "keras load_model(safe_mode=False)": "import keras\n"
    "m = keras.models.load_model('m.keras', safe_mode=False)\n",
    # mltrust: ignore[MLT-CODE-010] fake AWS key the benchmark plants to measure the secret rules
    "committed AWS key": "AWS_KEY = 'AKIAIOSFODNN7EXAMPL3'\n",
    # mltrust: ignore[MLT-CODE-009] fake PEM header the benchmark plants to measure the secret rules
    "committed PEM key": 'KEY = """-----BEGIN RSA PRIVATE KEY-----\nMIIE"""\n',
}


def bench_code_vs_bandit(tmp: Path) -> None:
    """Detection of ML patterns and time: mltrust's code collector vs the bandit CLI alone."""
    import json as _json

    from mltrust.evidence import CollectContext
    from mltrust.evidence._code import CodeCollector

    folder = tmp / "patterns"
    folder.mkdir()
    names = {}
    for i, (label, code) in enumerate(ML_PATTERNS.items()):
        (folder / f"p{i}.py").write_text(code)
        names[f"p{i}.py"] = label
    t0 = time.perf_counter()
    section = CodeCollector().collect(CollectContext(folder)).section
    ours_s = time.perf_counter() - t0
    ours = {r["path"] for r in section["findings"] if r["severity"] in ("high", "critical")}
    bandit = REPO / ".venv" / "bin" / "bandit"
    theirs: set[str] = set()
    theirs_s = float("nan")
    if bandit.exists():
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(bandit), "-q", "-f", "json", "-r", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        theirs_s = time.perf_counter() - t0
        try:
            results = _json.loads(proc.stdout)["results"]
        except (ValueError, KeyError):
            results = []
        theirs = {
            Path(r["filename"]).name for r in results if r["issue_severity"] in ("MEDIUM", "HIGH")
        }
    print("\nML code patterns flagged at medium+ (mltrust: high+):")
    print(f"  {'pattern':36} {'mltrust':>8} {'bandit':>8}")
    for fname, label in names.items():
        print(
            f"  {label:36} {'yes' if fname in ours else 'NO':>8} "
            f"{'yes' if fname in theirs else 'no':>8}"
        )
    print(
        f"  detected: mltrust {len(ours & set(names))}/{len(names)} in {ours_s:.2f} s, "
        f"bandit CLI {len(theirs & set(names))}/{len(names)} in {theirs_s:.2f} s "
        f"(bandit {_bandit_version()})"
    )


def _bandit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bandit")
    except PackageNotFoundError:
        return "?"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mltrust-policy-bench-") as tmp_name:
        tmp = Path(tmp_name)
        db = bench_import(tmp)
        project = build_project(tmp / "project")
        print()
        bench_controls(project, db)
        bench_check(project, db)
        bench_code_vs_bandit(tmp)


if __name__ == "__main__":
    main()
