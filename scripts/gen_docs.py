"""Regenerate docs/commands/*.md and docs/rules.md from real runs of the command line.

Usage: ``.venv/bin/python scripts/gen_docs.py`` (about a minute; ``... gen_docs.py s3`` for the
``mltrust s3`` page alone). It runs ``mltrust demo --keep``
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
ADVISORIES = Path(
    os.environ.get("MLTRUST_TEST_ADVISORY_DB")
    or ROOT.parent / "shared" / "data" / "pypa-advisory-db"
)
# mltrust: ignore[MLT-CODE-014] the public demo passphrase the generated docs show
PASSPHRASE = "demo-passphrase-not-for-production"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: The tampering the serve page shows: the last six audit entries deleted.
TAMPER = (
    "import sqlite3; db = sqlite3.connect('repo/.mltrust/audit.db'); "
    "db.execute('DELETE FROM audit WHERE seq > 30'); db.commit()"
)


#: The setup every page that runs in the demo's workspace shows first; the page's commands run
#: in that environment (tests/test_docs_walkthrough.py runs them as written).
WORKSPACE_SETUP = """\
The examples below run in the workspace the demo leaves behind, with its key's passphrase and
its server's audit key in the environment:

```sh
mltrust demo --keep --workdir ws
cd ws
export MLTRUST_PASSPHRASE=demo-passphrase-not-for-production   # the demo key's passphrase
export MLTRUST_AUDIT_KEY=$PWD/secrets/audit.key                # the demo server's audit key
```
"""


def run(args: list[str], cwd: Path, *, max_lines: int = 40) -> str:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100", "MLTRUST_PASSPHRASE": PASSPHRASE}
    if (cwd / "secrets" / "audit.key").is_file():
        env["MLTRUST_AUDIT_KEY"] = str(cwd / "secrets" / "audit.key")
    shown = " ".join(shlex.quote(a) for a in ["mltrust", *args])
    return _transcript(shown, [sys.executable, "-m", "mltrust", *args], cwd, env, max_lines)


def shell(command: str, cwd: Path) -> str:
    """Run a shell command the page shows (in an ``sh`` block) for the next commands' inputs."""
    subprocess.run(["bash", "-c", command], cwd=cwd, check=True, timeout=60)
    return f"```sh\n{command}\n```\n"


def _transcript(shown: str, argv: list[str], cwd: Path, env: dict[str, str], max_lines: int) -> str:
    proc = subprocess.run(
        argv,
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
    output = "".join(f"{line}\n" for line in lines)
    return f"```console\n$ {shown}\n{output}# exit code {proc.returncode}\n```\n"


def joined(*blocks: str) -> str:
    """Console blocks shown as one (a command and the next that depends on it)."""
    bodies = [b.removeprefix("```console\n").removesuffix("```\n") for b in blocks]
    return "```console\n" + "".join(bodies) + "```\n"


def page(name: str, title: str, intro: str, blocks: list[str], *, workspace: bool = True) -> None:
    setup = f"{WORKSPACE_SETUP}\n" if workspace else ""
    body = f"# {title}\n\n{intro}\n\n{setup}" + "\n".join(blocks)
    (DOCS / "commands" / f"{name}.md").write_text(body)


def main() -> None:
    (DOCS / "commands").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mltrust-docs-") as tmp:
        ws = Path(tmp) / "ws"
        demo_out = run(["demo", "--keep", "--workdir", "ws"], Path(tmp), max_lines=400)
        page(
            "demo",
            "mltrust demo",
            "The main job: a model's whole secured lifecycle in a temporary workspace. This is "
            "the complete output of one run.",
            [demo_out],
            workspace=False,
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
                "`evil.joblib` is a joblib file whose pickle runs `touch /tmp/pwned` when it is "
                "loaded:\n",
                "<!-- docs-test: fixture evil.joblib -->",
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
            "Signed attestations about a model (scan results, SLSA provenance, robustness, "
            "explanations, tuning), kept beside the model and in the evidence store.",
            [
                run(["attest", "provenance", "--help"], ws),
                run(["attest", "explain", "--help"], ws),
                run(["attest", "tuning", "--help"], ws),
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
            (ws / "advisory-db").symlink_to(ADVISORIES)
            checks += [
                "## Importing an offline advisory database\n",
                "`advisory-db` is a copy of the [PyPA advisory database]"
                "(https://github.com/pypa/advisory-database) (`git clone`, or the OSV export "
                "unpacked); `--db` keeps the imported database beside it instead of in the user "
                "data folder.\n",
                "<!-- docs-test: fixture advisory-db -->",
                run(["db", "import", "advisory-db", "--db", "advisories.db"], ws),
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
                "`project/` pins `jinja2==2.10` in its `requirements.txt`, leaves `requests` "
                "unpinned, and its `train.py` unpickles a file:\n",
                "<!-- docs-test: fixture project -->",
                run(["check", "project", "--db", "advisories.db", "--no-store"], ws, max_lines=60),
            ]
        page(
            "check",
            "mltrust check and db",
            "Collect evidence, evaluate a policy profile, print a verdict (text, JSON, SARIF, "
            "JUnit, Markdown, HTML). Exit 0 pass, 1 fail, 2 error. Exactly what is analysed and "
            "what is not (git-tracked files always; pruned tool folders and proven virtual "
            "environments, which fail `analysis-complete` unless git says they are untracked; "
            "Python scripts found by their shebang; links named like code analysed as their "
            "target): [policy](../policy.md#what-check-reads-and-what-it-does-not). "
            "The model scan's settings come only from `--scan-config FILE`: the checked "
            "project's own `mltrust.toml` or `[tool.mltrust]` is never read (nor one in the "
            "current folder, which in CI is the checkout), and is listed as "
            "`scan.ignored_config`. "
            "With `--target URL` instead of a path, `check` probes a live inference endpoint: "
            "see [compliance probes](../probes.md).",
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
                "Export a checkpoint to keep elsewhere, and verify against it later:\n",
                joined(
                    run(["audit", "checkpoint", "export", "repo", "-o", "cp.json"], ws),
                    run(["audit", "verify", "repo", "--checkpoint", "cp.json"], ws),
                ),
                run(["audit", "tail", "repo", "-n", "2"], ws),
                "Someone who can write `repo/.mltrust` deletes the last six entries; the anchor "
                "and the checkpoint both notice:\n",
                joined(
                    _transcript(
                        f'python -c "{TAMPER}"',  # TAMPER holds no " or $
                        [sys.executable, "-c", TAMPER],
                        ws,
                        dict(os.environ),
                        40,
                    ),
                    run(["audit", "verify", "repo", "--checkpoint", "cp.json"], ws),
                ),
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
        page(
            "explain",
            "mltrust explain",
            "Feature attributions of a classifier (Shapley values, permutation importance, "
            "integrated gradients) and the sanity checks they must pass; see "
            "[Explanations as evidence](../explain.md).",
            [
                run(["explain", "--help"], ws, max_lines=60),
                "The model is copied out of the signed folder first: an attestation written "
                "beside a file\ninside a signed folder would become part of that folder, and "
                "fail its signature.\n",
                shell("mkdir -p models && cp repo/iris/model.joblib models/iris.joblib", ws),
                run(
                    [
                        "explain",
                        "models/iris.joblib",
                        "--data",
                        "data/iris.csv",
                        "--label",
                        "label",
                        "--statement",
                        "explain.json",
                    ],
                    ws,
                ),
                run(
                    [
                        "attest",
                        "explain",
                        "models/iris.joblib",
                        "--statement",
                        "explain.json",
                        "--key",
                        "keys/demo.key",
                        "--no-store",
                    ],
                    ws,
                ),
            ],
        )
        page(
            "monitor",
            "mltrust monitor",
            "Drift between data sets or over a stream, and per-request scorers for the gateway.",
            [
                run(["monitor", "--help"], ws),
                run(["monitor", "drift", "--help"], ws, max_lines=60),
                "## Shifted data is detected\n",
                "A copy of the demo's data with every petal 1.5 cm longer:\n",
                shell(
                    "awk -F, -v OFS=, 'NR > 1 { $3 += 1.5 } 1' data/iris.csv "
                    "> data/iris-shifted.csv",
                    ws,
                ),
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


S3_INTRO = """\
Push a signed model folder to S3-compatible object storage (AWS S3, MinIO, Ceph) and pull it
back verified. `push` verifies the folder against the pinned key and uploads exactly what the
signature covers, with `model.sig` and the attestations. Each file is opened below the
verified folder without following any link (a sub-folder swapped for a link to `~/.ssh` after
verification is refused) and hashed as it is uploaded; a file that no longer matches its
signed digest, or a `model.sig`/attestation no longer signed by the pinned key, aborts the
push, deletes what it had uploaded under the prefix and exits 1.

`pull` downloads `model.sig` first, by name, and opens it with the pinned key; only then does
it list the prefix, accepting no more objects than the signature covers (plus a few folder
markers; a larger listing is refused, exit 1, before it is parsed). It refuses unsafe object
names (`..`, absolute paths, backslashes, names that collide by case) and fetches only the
objects the signature covers, at their signed sizes, into a staging folder beside the
destination; it verifies every file, scans them, and only then renames the folder into place.
On any failure nothing is left at the destination. With `--state`, the version is checked
against the rollback memory before the scan but recorded only once the folder is in place, so
a refused pull never advances it. The whole pull has a wall-clock budget (`--timeout`,
default 3600 s) and each object a minimum rate (`--min-rate`, default 64 KiB/s after a 60 s
grace period): a server that trickles bytes fails the pull with exit 2. A staging folder left
by a pull that was killed (`.DEST.pull-*`, no live pull holding its lock) is removed by the
next pull into the same destination. Exit 0 done, 1 verification failed or findings, 2 setup
error (credentials, bucket, destination exists, timeout).

Credentials come from boto3's usual places: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
`AWS_PROFILE` or `--profile`, the shared config files. For a server that is not AWS, pass
`--endpoint-url` or set `AWS_ENDPOINT_URL_S3`. Install with `pip install 'mltrust[s3]'`.

## Copy-paste: a model through MinIO

A model folder `models/iris`, signed and pushed to the bucket `models` of a MinIO server, then
pulled where it is deployed (the transcripts below are real runs against an S3 server on
loopback):

<!-- docs-test: fixture s3-server models/iris -->
```bash
export AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000     # your MinIO server
export MLTRUST_PASSPHRASE='a long passphrase'        # protects the signing key
mltrust keys generate --out keys/release
mltrust sign models/iris --key keys/release.key --name iris --version 3
mltrust attest scan models/iris --key keys/release.key   # optional: travels with the model
mkdir deploy                                         # where the pulled models go
```

Re-pushing to a prefix that holds objects needs `--replace` (objects the new folder does not
have are deleted, so a stale file cannot make the next pull fail). A folder that is not signed
is pushed only with `--allow-unsigned`, and such a prefix never pulls."""


def s3_page() -> None:
    """docs/commands/s3.md from real runs against moto's S3 server on loopback (boto3 and
    moto[server], the test extra)."""
    import logging
    import socket

    import boto3
    import numpy as np
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    aws = {
        "AWS_ACCESS_KEY_ID": "minioadmin",
        "AWS_SECRET_ACCESS_KEY": "minioadmin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {k: os.environ.get(k) for k in aws}
    os.environ.update(aws)
    try:
        with tempfile.TemporaryDirectory(prefix="mltrust-docs-s3-") as tmp:
            ws = Path(tmp)
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="models")
            model = ws / "models" / "iris"
            (model / "tokenizer").mkdir(parents=True)
            np.save(model / "weights.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
            (model / "config.json").write_text('{"hidden": 4}\n')
            (model / "tokenizer" / "vocab.txt").write_text("setosa\nversicolor\nvirginica\n")
            (ws / "deploy").mkdir()
            run(["keys", "generate", "--out", "keys/release"], ws)
            run(["sign", "models/iris", "--key", "keys/release.key", "--name", "iris",
                 "--version", "3"], ws)  # fmt: skip
            run(["attest", "scan", "models/iris", "--key", "keys/release.key"], ws)
            trust = ["--key", "keys/release.pub"]
            push = ["s3", "push", "models/iris", "s3://models/iris/3", *trust]
            pull = ["s3", "pull", "s3://models/iris/3"]
            blocks = [
                run(["s3", "push", "--help"], ws),
                run(push, ws),
                run([*pull, "deploy/iris", *trust, "--name", "iris", "--version", "3"], ws),
                "## An object the signature does not cover\n",
                "Someone with write access to the bucket adds a git hook beside the model:\n",
            ]
            s3.put_object(Bucket="models", Key="iris/3/.git/hooks/post-checkout", Body=b"#!/bin/sh")
            blocks += [
                "<!-- docs-test: fixture s3-git-hook -->",
                run([*pull, "deploy/iris-2", "--key", "keys/release.pub"], ws),
            ]
            s3.delete_object(Bucket="models", Key="iris/3/.git/hooks/post-checkout")
            blocks += [
                "## Object names that would leave the destination\n",
                "The hook is removed; an object named `../../etc/cron.d/job` and a `Config.json` "
                "beside\n`config.json` are added:\n",
                "<!-- docs-test: fixture s3-unsafe-names -->",
            ]
            s3.put_object(Bucket="models", Key="iris/3/../../etc/cron.d/job", Body=b"* * * * *")
            s3.put_object(Bucket="models", Key="iris/3/Config.json", Body=b"{}")
            blocks.append(run([*pull, "deploy/iris-3", "--key", "keys/release.pub"], ws))
            blocks.append(run(["s3", "pull", "--help"], ws))
            page("s3", "mltrust s3", S3_INTRO, blocks, workspace=False)
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


if __name__ == "__main__":
    if sys.argv[1:] == ["s3"]:
        s3_page()
    else:
        main()
        s3_page()
