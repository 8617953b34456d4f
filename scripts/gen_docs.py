"""Regenerate docs/commands/*.md and docs/rules.md from real runs of the command line.

Usage: ``.venv/bin/python scripts/gen_docs.py`` (about a minute). It runs ``mltrust demo --keep``
in a temporary folder and then each documented command against that workspace, so every
example on the command pages is output that mltrust really printed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ADVISORIES = ROOT.parent / "shared" / "data" / "pypa-advisory-db"
# mltrust: ignore[MLT-CODE-014] the public demo passphrase the generated docs show
PASSPHRASE = "demo-passphrase-not-for-production"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(args: list[str], cwd: Path, *, max_lines: int = 40) -> str:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100", "MLTRUST_PASSPHRASE": PASSPHRASE}
    proc = subprocess.run(
        [sys.executable, "-m", "mltrust", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    text = _ANSI.sub("", proc.stdout + proc.stderr).replace(str(cwd) + "/", "")
    lines = text.rstrip().splitlines()
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"… ({len(lines) - max_lines} more lines)"]
    shown = " ".join(shlex.quote(a) for a in args)
    return (
        f"```console\n$ mltrust {shown}\n"
        + "\n".join(lines)
        + f"\n# exit code {proc.returncode}\n```\n"
    )


def page(name: str, title: str, intro: str, blocks: list[str]) -> None:
    body = f"# {title}\n\n{intro}\n\n" + "\n".join(blocks)
    (DOCS / "commands" / f"{name}.md").write_text(body)


def main() -> None:
    (DOCS / "commands").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mltrust-docs-") as tmp:
        ws = Path(tmp) / "ws"
        demo_out = run(["demo", "--keep", "--workdir", str(ws)], Path(tmp), max_lines=400)
        page(
            "demo",
            "mltrust demo",
            "The main job: a model's whole secured lifecycle in a temporary workspace. This is "
            "the complete output of one run.",
            [demo_out],
        )

        sys.path.insert(0, str(ROOT / "src"))
        from mltrust.cli._demo import _malicious_joblib

        evil = ws / "evil.joblib"
        evil.write_bytes(_malicious_joblib(["touch", "/tmp/pwned"]))
        page(
            "scan",
            "mltrust scan",
            "Scan files and folders for unsafe content without executing them. Formats are "
            "recognised by content; a file whose format is unknown is reported as not scanned.",
            [
                run(["scan", "--help"], ws),
                "## A clean model\n",
                run(["scan", "repo/iris/model.joblib"], ws),
                "## A poisoned joblib file\n",
                run(["scan", "evil.joblib"], ws),
                "## JSON output\n",
                run(["scan", "evil.joblib", "--format", "json"], ws, max_lines=60),
                "## Formats recognised\n",
                run(["formats"], ws),
            ],
        )
        page(
            "sign",
            "mltrust keys, sign and verify",
            "Sign a model folder (a Sigstore bundle with an in-toto statement that OpenSSF "
            "model_signing accepts) and verify it against a pinned key.",
            [
                run(["keys", "generate", "--help"], ws),
                run(["keys", "generate", "--out", "keys/docs"], ws),
                run(["sign", "--help"], ws),
                run(
                    [
                        "sign",
                        "repo/iris",
                        "--key",
                        "keys/docs.key",
                        "--name",
                        "iris",
                        "--version",
                        "2",
                        "--output",
                        "iris-docs.sig",
                    ],
                    ws,
                ),
                run(
                    [
                        "verify",
                        "repo/iris",
                        "--key",
                        "keys/docs.pub",
                        "--signature",
                        "iris-docs.sig",
                    ],
                    ws,
                ),
                "## Tampering is named file by file\n",
                run(
                    [
                        "verify",
                        "repo/iris",
                        "--key",
                        "keys/demo.pub",
                        "--signature",
                        "iris-docs.sig",
                    ],
                    ws,
                ),
                "## The verifier names the model it expects\n",
                run(
                    [
                        "verify",
                        "repo/iris",
                        "--key",
                        "keys/docs.pub",
                        "--signature",
                        "iris-docs.sig",
                        "--name",
                        "other-model",
                    ],
                    ws,
                ),
                run(["verify", "--help"], ws),
            ],
        )
        page(
            "attest",
            "mltrust attest and evidence",
            "Signed attestations about a model (scan results, SLSA provenance), kept beside the "
            "model and in the evidence store.",
            [
                run(["attest", "provenance", "--help"], ws),
                run(["evidence", "list"], ws),
                run(["evidence", "--help"], ws),
            ],
        )
        checks = [
            run(["check", "--help"], ws, max_lines=60),
            "## A signed model folder\n",
            run(["check", "repo/iris", "--key", "keys/demo.pub"], ws, max_lines=60),
        ]
        if ADVISORIES.is_dir():
            db = ws / "advisories.db"
            checks += [
                "## Importing an offline advisory database\n",
                run(["db", "import", str(ADVISORIES), "--db", str(db)], ws),
            ]
            proj = ws / "project"
            proj.mkdir()
            (proj / "requirements.txt").write_text("jinja2==2.10\nrequests\n")
            (proj / "train.py").write_text(
                "import pickle\n\nwith open('model.pkl', 'rb') as fh:\n"
                "    model = pickle.load(fh)\n"
            )
            checks += [
                "## A project that fails the gate\n",
                run(["check", "project", "--db", str(db), "--no-store"], ws, max_lines=60),
            ]
        page(
            "check",
            "mltrust check and db",
            "Collect evidence, evaluate a policy profile, print a verdict (text, JSON, SARIF, "
            "JUnit, Markdown, HTML). Exit 0 pass, 1 fail, 2 error. With `--target URL` instead "
            "of a path, `check` probes a live inference endpoint: see "
            "[compliance probes](../probes.md).",
            checks,
        )
        page(
            "serve",
            "mltrust serve and audit",
            "A hardened Open Inference Protocol (KServe V2) server, and its audit log.",
            [
                run(["serve", "--help"], ws),
                run(["serve", "keys", "--help"], ws),
                run(["serve", "keys", "list", "--repo", "repo"], ws),
                run(["audit", "verify", "repo"], ws),
                run(["audit", "tail", "repo", "-n", "2"], ws),
            ],
        )
        page(
            "robustness",
            "mltrust robustness",
            "Adversarial evaluation, hardening, privacy and poisoning checks.",
            [
                run(["robustness", "--help"], ws),
                run(
                    [
                        "robustness",
                        "repo/iris/model.joblib",
                        "--data",
                        "data/iris.csv",
                        "--label",
                        "label",
                        "--attack",
                        "pgd",
                        "--eps",
                        "0.1,0.3,0.5",
                    ],
                    ws,
                ),
                run(
                    [
                        "robustness",
                        "repo/iris/model.joblib",
                        "--data",
                        "data/iris.csv",
                        "--label",
                        "label",
                        "--attack",
                        "exact",
                        "--eps",
                        "0.1,0.3,0.5",
                    ],
                    ws,
                ),
                run(["robustness", "poisoning", "--data", "data/iris.csv", "--label", "label"], ws),
            ],
        )
        lines = (ws / "data" / "iris.csv").read_text().splitlines()
        shifted = [lines[0]] + [
            ",".join(
                [*row.split(",")[:2], str(float(row.split(",")[2]) + 1.5), *row.split(",")[3:]]
            )
            for row in lines[1:]
        ]
        (ws / "data" / "iris-shifted.csv").write_text("\n".join(shifted) + "\n")
        page(
            "monitor",
            "mltrust monitor",
            "Drift between data sets or over a stream, and per-request scorers for the gateway.",
            [
                run(["monitor", "--help"], ws),
                run(["monitor", "drift", "--help"], ws, max_lines=60),
                "## Shifted data is detected\n",
                run(
                    [
                        "monitor",
                        "drift",
                        "--reference",
                        "data/iris.csv",
                        "--current",
                        "data/iris-shifted.csv",
                        "--drop",
                        "label",
                        "--no-mmd",
                    ],
                    ws,
                ),
            ],
        )
        rules = subprocess.run(
            [sys.executable, "-m", "mltrust", "rules", "--format", "markdown"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (DOCS / "rules.md").write_text(
            "# Rules\n\nEvery rule mltrust can report, generated from the rule registry "
            "(`mltrust rules --format markdown`).\n\n" + rules
        )


if __name__ == "__main__":
    main()
