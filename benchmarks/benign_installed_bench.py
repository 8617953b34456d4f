"""False alarms on real benign files nobody here wrote: data files inside installed packages.

Issue 10 asks for a held-out set of about 900 real benign files, flagged at medium or above at
most 1% of the time and less often than picklescan flags them. The files that numpy, scipy,
scikit-learn, joblib, torch, onnx, h5py, statsmodels, pandas and the rest ship as test data and
resources are such a set: written by the libraries' own save functions, at many versions, and
never seen while the scanner was tuned (the corpus in ``corpus.py`` is ours). This script
collects every file with a model-format suffix under the interpreter's ``site-packages``, scans
them all with one ``mltrust scan`` process, scans each with picklescan (from its own virtual
environment under ``.bench/``, installed on first use; left out when it cannot be installed), and
prints how many each flags, with the list of mltrust's flags and the reasons.

    python benchmarks/benign_installed_bench.py [--root SITE_PACKAGES] [--limit N] [--list] [--wide]
    python benchmarks/benign_installed_bench.py --saved [--list]

``--saved`` measures the issue's other kind of benign file instead: objects saved by the
libraries' own save functions (``pickle.dumps`` at protocols 2 and 5, ``joblib.dump`` plain and
compressed, ``torch.save`` zip and legacy), as ``scripts/allowlist_evidence.py`` builds them for
every library installed here; the files are written to ``.bench/saved/``. Its one case flagged by
design (``scipy.stats.frozen``: SciPy distributions run ``exec`` when unpickled) is counted
apart.

A file that a library ships may in principle be hostile; every flag is listed so that a person
can judge it. Test data that is malformed on purpose (numpy ships truncated and invalid pickles
to test its own error paths) is flagged by design: the scanner fails closed on files a loader
would refuse or could misread, and the listing names them.
"""

from __future__ import annotations

import argparse
import json
import sysconfig
from pathlib import Path

from scan_bench import BENCH, _mltrust_cmd, _run, ensure_venv, run_picklescan

#: Suffixes of the formats the scanner covers (``.bin`` and ``.pb`` are left out: most such
#: files in site-packages are unrelated binary resources, and their inclusion would measure the
#: sniffer rather than the analysers).
SUFFIXES = (
    ".pkl", ".pickle", ".pck", ".joblib", ".npy", ".npz", ".pt", ".pth", ".ckpt", ".h5",
    ".hdf5", ".keras", ".onnx", ".safetensors", ".gguf", ".sav", ".pkl.gz", ".pkl.bz2",
    ".pkl.xz", ".pkl.z", ".pkl.lzma",
)  # fmt: skip
#: ``--wide`` adds protobuf, YAML and compressed files (the scanner sniffs and unpacks them).
WIDE = (".pb", ".yaml", ".yml", ".gz", ".bz2", ".xz")


class _Sample:
    def __init__(self, path: Path) -> None:
        self.path = path


def collect(root: Path, limit: int, suffixes: tuple[str, ...] = SUFFIXES) -> list[Path]:
    found: list[Path] = []
    for path in sorted(root.rglob("*")):
        name = path.name.lower()
        if not name.endswith(suffixes) or path.is_symlink() or not path.is_file():
            continue
        if path.parent == root:  # site-packages' own .pth path files, not PyTorch files
            continue
        if path.stat().st_size > 64 * 1024 * 1024:
            continue
        found.append(path)
        if len(found) >= limit:
            break
    return found


def scan_mltrust(files: list[Path]) -> dict[str, list[str]]:
    """path -> messages of the medium+ findings (empty when the file passes)."""
    flagged: dict[str, list[str]] = {}
    proc = _run([*_mltrust_cmd(), "scan", *map(str, files), "--format", "json"], timeout=3600)
    if proc is None or proc.returncode not in (0, 1):
        raise SystemExit(f"mltrust scan failed: {proc.stderr if proc else 'timeout'}")
    report = json.loads(proc.stdout)
    bad = {"medium", "high", "critical"}
    for entry in report["files"]:
        messages = [
            f"{f['rule_id']} {f['severity']}: {f['message']}"
            for f in entry["findings"]
            if f["severity"] in bad
        ]
        flagged[entry["path"]] = messages
    return flagged


def _saved_files() -> tuple[list[Path], set[str]]:
    """Write the allowlist-evidence cases to ``.bench/saved/``: the files, and the paths of the
    cases flagged by design."""
    import re
    import shutil
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import allowlist_evidence as evidence

    folder = BENCH / "saved"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cases, missing = evidence.cases()
    if missing:
        print(f"libraries not installed here (their cases left out): {', '.join(missing)}")
    files: list[Path] = []
    by_design: set[str] = set()
    for index, case in enumerate(cases):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{index:04d}_{case.name}_{case.how}")[:120]
        path = folder / f"{name}.bin"
        path.write_bytes(case.data)
        files.append(path)
        if case.name == "scipy.stats.frozen":
            by_design.add(str(path))
    return files, by_design


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(sysconfig.get_paths()["purelib"]))
    parser.add_argument("--limit", type=int, default=5000)
    parser.add_argument("--list", action="store_true", help="print every flagged file")
    parser.add_argument("--wide", action="store_true", help="add " + ", ".join(WIDE))
    parser.add_argument(
        "--saved", action="store_true", help="objects saved by the libraries' own save functions"
    )
    args = parser.parse_args()
    BENCH.mkdir(exist_ok=True)
    by_design: set[str] = set()
    if args.saved:
        files, by_design = _saved_files()
        args.root = BENCH / "saved"
        print(f"objects saved by the installed libraries' own functions: {len(files)} files")
    else:
        files = collect(args.root, args.limit, SUFFIXES + WIDE if args.wide else SUFFIXES)
        print(f"benign files with a model suffix under {args.root}: {len(files)}")
    ours = scan_mltrust(files)
    missing = [p for p in files if str(p) not in ours]
    hits = {p: m for p, m in ours.items() if m and p not in by_design}
    if by_design:
        files = [p for p in files if str(p) not in by_design]
        flagged = sum(1 for p in by_design if ours.get(p))
        print(f"flagged by design (scipy.stats.frozen): {flagged} of {len(by_design)}, left out")
    rate = 100 * len(hits) / max(1, len(files))
    print(f"mltrust: {len(hits)} flagged at medium+ ({rate:.2f}%), {len(missing)} not reported")
    by_package: dict[str, int] = {}
    for p in hits:
        package = Path(p).relative_to(args.root).parts[0]
        by_package[package] = by_package.get(package, 0) + 1
    for package, count in sorted(by_package.items(), key=lambda kv: -kv[1]):
        print(f"  {package}: {count}")
    if args.list:
        for p, messages in sorted(hits.items()):
            print(f"  {Path(p).relative_to(args.root)}")
            for m in messages[:3]:
                print(f"      {m[:160]}")
    bin_dir = ensure_venv("picklescan")
    if bin_dir is None:
        print("picklescan: not installed, no comparison")
        return
    theirs = run_picklescan(bin_dir, [_Sample(p) for p in files])  # type: ignore[arg-type]
    their_hits = sum(theirs.flagged.values())
    if args.list:
        for p, flagged in sorted(theirs.flagged.items()):
            if flagged:
                print(f"  picklescan flags {Path(p).relative_to(args.root)}")
    print(
        f"picklescan: {their_hits} flagged ({100 * their_hits / max(1, len(files)):.2f}%), "
        f"{len(theirs.errors)} errors"
    )


if __name__ == "__main__":
    main()
