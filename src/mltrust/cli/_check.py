"""``mltrust check PATH``: collect evidence, store it, evaluate a profile, print a verdict.

``mltrust check --target URL``: probe a live inference endpoint instead (:mod:`mltrust.probe`);
same verdict, report formats and exit codes.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from mltrust.cli._common import (
    Format,
    format_option,
    no_conflict,
    output_option,
    stderr_is_terminal,
    stdout_is_terminal,
)
from mltrust.errors import ConfigError, Error

__all__ = ["check", "run_check"]

log = logging.getLogger("mltrust.check")


def _store_path(path: Path) -> Path:
    """The one evidence store of a subject, shared with ``mltrust attest``."""
    from mltrust.store import EvidenceStore

    return EvidenceStore.default_path(path if path.is_dir() else path.parent)


def _signer(sign_key: Path | None) -> tuple[Any, str | None]:
    """``(sign(statement) -> bundle, fingerprint)`` for ``--sign-key``, or ``(None, None)``."""
    if sign_key is None:
        return None, None
    try:
        from mltrust.attest import fingerprint, load_private_key, sign_statement
    except ImportError:
        raise ConfigError("--sign-key needs mltrust.attest, which is not installed") from None
    key = load_private_key(sign_key)

    def sign(statement: Mapping[str, Any]) -> Mapping[str, Any]:
        bundle: Mapping[str, Any] = sign_statement(statement, key)
        return bundle

    return sign, fingerprint(key.public_key())


def _store(
    bundle: Any, verdict: Any, path: Path, signer_fp: str | None, store_path: Path | None = None
) -> dict[str, Any]:
    try:
        from mltrust.store import EvidenceStore
    except ImportError:
        log.debug("mltrust.store is not installed; evidence not stored")
        return {}
    db = store_path or _store_path(path)
    db.parent.mkdir(parents=True, exist_ok=True)
    ids: list[str] = []
    with EvidenceStore.open(db) as store:
        envelopes = bundle.envelopes or (None,) * len(bundle.collected)
        for statement, envelope in zip(bundle.statements(), envelopes, strict=True):
            dsse = envelope.get("dsseEnvelope", envelope) if envelope is not None else None
            ids.append(
                store.add_statement(
                    statement,
                    envelope=dsse,
                    signer=signer_fp if envelope is not None else None,
                    subject_digest=bundle.subject["digest"]["sha256"],
                )
            )
        verdict_id = store.add_verdict(
            verdict.to_dict(),
            subject_digest=bundle.subject["digest"]["sha256"],
            profile=verdict.profile.name,
        )
    log.info("stored %d statements and the verdict in %s", len(ids), db)
    return {"store": str(db), "statements": ids, "verdict": verdict_id}


def run_check(
    path: Path,
    *,
    profile: str = "default",
    waivers: Path | None = None,
    keys: tuple[Path, ...] = (),
    advisory_db: Path | None = None,
    db_max_age: float = 30.0,
    image_report: Path | None = None,
    environment: bool = False,
    store: bool = True,
    sign_key: Path | None = None,
    today: _dt.date | None = None,
    jobs: int = 1,
    store_path: Path | None = None,
    inline_suppressions: bool | None = None,
    scan_config: Path | None = None,
) -> Any:
    """Collect, store and evaluate; returns ``(CheckReport, CollectContext)``.

    ``inline_suppressions`` (None: the profile's ``code.inline_suppressions``, off unless it
    opts in) says whether the checked project's ``# mltrust: ignore[...]`` comments suppress
    its code findings.

    The model scan's configuration comes only from ``scan_config`` (``--scan-config FILE``),
    else the defaults: never from the subject (its ``mltrust.toml`` or ``[tool.mltrust]``
    could allow its own pickle imports) nor from the current folder (in CI, the checkout
    under check). Configuration files the subject holds are recorded as
    ``scan.ignored_config``.

    The profile and waivers are loaded (and every CEL expression compiled) before any evidence
    is collected, so a broken policy fails fast with the control's ID.
    """
    from mltrust import __version__
    from mltrust.config import ScanConfig, load_scan_config, subject_scan_configs
    from mltrust.evidence import CollectContext, collect_evidence
    from mltrust.policy import control_catalogue, evaluate, load_profile, load_waivers
    from mltrust.report import CheckReport

    if not path.exists():
        raise ConfigError(f"no such file or folder: {path}")
    if keys:
        try:
            from mltrust.attest import load_public_key
        except ImportError:
            raise ConfigError("--key needs mltrust.attest, which is not installed") from None
        for key in keys:
            load_public_key(key)  # an unreadable or foreign key is a setup error, not a fail
    if advisory_db is not None and advisory_db.exists():
        from mltrust.advisories import AdvisoryDB

        AdvisoryDB.open(advisory_db).close()  # a file that is not a database: setup error
    loaded = load_profile(profile)
    waiver_list = (
        load_waivers(
            waivers,
            controls=control_catalogue(loaded),
            today=today,
            max_days=loaded.waiver_max_days,
        )
        if waivers is not None
        else ()
    )
    sign, signer_fp = _signer(sign_key)
    root = path if path.is_dir() else path.parent
    config = load_scan_config(scan_config) if scan_config is not None else ScanConfig()
    explicit = scan_config.resolve() if scan_config is not None else None
    ignored = tuple(
        name
        for name in subject_scan_configs(root)
        if explicit is None or (root / name.split(" ")[0]).resolve() != explicit
    )
    ctx = CollectContext(
        path=path,
        keys=keys,
        advisory_db=advisory_db,
        advisory_max_age_days=db_max_age,
        image_report=image_report,
        environment=environment,
        jobs=jobs,
        inline_suppressions=(
            loaded.inline_suppressions if inline_suppressions is None else inline_suppressions
        ),
        scan_config=config,
        ignored_scan_config=ignored,
    )
    bundle = collect_evidence(ctx, signer=sign)
    verdict = evaluate(
        bundle.document,
        loaded,
        waivers=waiver_list,
        today=today,
        collector_errors=bundle.errors,
    )
    stored: dict[str, Any] = {}
    if store:
        try:
            stored = _store(bundle, verdict, path, signer_fp, store_path)
        except Error:
            raise
        except OSError as exc:
            raise ConfigError(f"cannot store evidence under {_store_path(path)}: {exc}") from None
    report = CheckReport(
        verdict=verdict,
        document=bundle.document,
        findings=tuple(bundle.findings),
        base=str(path) if path.is_dir() else str(path.parent),
        tool_version=__version__,
        stored=stored,
    )
    return report, ctx


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ConfigError(f"--target-header takes 'Name: value', not {text[:40]!r}")
    return name.strip(), value.strip()


def run_target_check(
    target: str,
    *,
    controls: tuple[str, ...] = (),
    headers: tuple[str, ...] = (),
    token: str | None = None,
    model: str | None = None,
    insecure_tls: bool = False,
    cacert: Path | None = None,
    burst: int = 50,
    extraction_queries: int = 200,
    timeout_s: float = 10.0,
) -> Any:
    """Probe ``target`` (see :mod:`mltrust.probe`); returns the :class:`CheckReport`."""
    from mltrust import __version__
    from mltrust.probe import ProbeOptions, probe_report

    pairs = [_header(h) for h in headers]
    if token is not None:
        pairs.append(("Authorization", f"Bearer {token}"))
    ids = tuple(c.strip() for item in controls for c in item.split(",") if c.strip())
    opts = ProbeOptions(
        target=target,
        headers=tuple(pairs),
        model=model,
        controls=ids,
        insecure_tls=insecure_tls,
        cacert=cacert,
        burst=burst,
        extraction_queries=extraction_queries,
        timeout_s=timeout_s,
    )
    return probe_report(opts, tool_version=__version__)


@click.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-p",
    "--profile",
    default="default",
    show_default=True,
    help="A shipped profile (default, atlas, owasp-ml-top10, nist-ai-rmf) or a YAML file.",
)
@click.option(
    "--waivers",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML file of waivers: one finding (advisory+package, rule+path, fingerprint) or one "
    "control, each with a justification and an expiry (docs/waivers.md).",
)
@click.option(
    "-k",
    "--key",
    "keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trusted public key for signature verification (repeatable).",
)
@format_option(Format.TEXT, Format.JSON, Format.SARIF, Format.JUNIT, Format.MARKDOWN, Format.HTML)
@output_option
@click.option(
    "--db",
    "advisory_db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Advisory database (from `mltrust db import`) [default: the user data folder].",
)
@click.option(
    "--db-max-age",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Days after which advisory data counts as stale and fails the gate (0: never).",
)
@click.option(
    "--image-report",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Trivy or Grype JSON report of the container image.",
)
@click.option(
    "--environment",
    is_flag=True,
    help="Also check the packages installed in this Python environment.",
)
@click.option(
    "--sign-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Private key to sign each evidence statement (DSSE) before storing it.",
)
@click.option(
    "--bom-output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the CycloneDX 1.6 ML-BOM to FILE.",
)
@click.option("--no-store", is_flag=True, help="Do not record evidence in PATH/.mltrust/.")
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Evidence store [default: PATH/.mltrust/evidence.db; `mltrust attest` and "
    "`mltrust evidence` use ./.mltrust/evidence.db, the same one when PATH is '.'].",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes for the model scan and bandit.",
)
@click.option(
    "--inline-suppressions/--no-inline-suppressions",
    "inline_suppressions",
    default=None,
    help="Whether the project's `# mltrust: ignore[RULE] reason` comments suppress its code "
    "findings [default: the profile's code.inline_suppressions, off unless it opts in].",
)
@click.option(
    "--scan-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML file with the model scan's [scan] settings (mltrust.toml, or a pyproject.toml "
    "with [tool.mltrust]) [default: the built-in defaults; the checked project's own "
    "mltrust.toml or [tool.mltrust] is never read, and is listed as scan.ignored_config].",
)
@click.option(
    "--target",
    metavar="URL",
    default=None,
    help="Probe a live inference endpoint (Open Inference Protocol v2) instead of PATH: "
    "authentication, management endpoints, TLS, rate limits, input validation, leaks "
    "(docs/probes.md).",
)
@click.option(
    "--controls",
    multiple=True,
    metavar="ID[,ID...]",
    help="With --target: only these probe controls (repeatable) [default: all].",
)
@click.option(
    "--target-header",
    "target_headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="With --target: a header that authenticates the probes (repeatable; never reported).",
)
@click.option(
    "--token",
    envvar="MLTRUST_TARGET_TOKEN",
    default=None,
    help="With --target: bearer token for the probes [env: MLTRUST_TARGET_TOKEN].",
)
@click.option("--model", default=None, help="With --target: the model to probe.")
@click.option(
    "--insecure-tls",
    is_flag=True,
    help="With --target: probe even when the certificate does not verify (the tls control "
    "still fails).",
)
@click.option(
    "--cacert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --target: CA bundle that verifies the endpoint's certificate.",
)
@click.option(
    "--burst",
    type=click.IntRange(min=2, max=10000),
    default=50,
    show_default=True,
    help="With --target: identical requests in the rate-limit burst.",
)
@click.option(
    "--extraction-queries",
    type=click.IntRange(min=2, max=100000),
    default=200,
    show_default=True,
    help="With --target: distinct queries in the extraction burst.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1, max=600),
    default=10.0,
    show_default=True,
    help="With --target: seconds to wait for each answer.",
)
def check(
    path: Path | None,
    profile: str,
    waivers: Path | None,
    keys: tuple[Path, ...],
    fmt: str,
    output: str | None,
    advisory_db: Path | None,
    db_max_age: float,
    image_report: Path | None,
    environment: bool,
    sign_key: Path | None,
    bom_output: Path | None,
    no_store: bool,
    jobs: int,
    store_path: Path | None,
    inline_suppressions: bool | None,
    scan_config: Path | None,
    target: str | None,
    controls: tuple[str, ...],
    target_headers: tuple[str, ...],
    token: str | None,
    model: str | None,
    insecure_tls: bool,
    cacert: Path | None,
    burst: int,
    extraction_queries: int,
    timeout_s: float,
) -> int:
    """Gate a model or project on evidence: scan, signature, ML-BOM, dependencies, code,
    licenses and image vulnerabilities, evaluated against a policy profile.

    With --target URL instead of PATH: probe a live inference endpoint (docs/probes.md).

    Exit 0 when the verdict is pass, 1 when a control fails, 2 on error (a control that
    cannot be evaluated, a collector failure, bad options, an unreachable target).
    """
    no_conflict(**{"--store": store_path, "--no-store": no_store})
    from mltrust.report import CheckFormat, render_check, write_output

    color = output is None and stdout_is_terminal()
    if target is not None:
        if path is not None:
            raise ConfigError("give PATH or --target URL, not both")
        probe = run_target_check(
            target,
            controls=controls,
            headers=target_headers,
            token=token,
            model=model,
            insecure_tls=insecure_tls,
            cacert=cacert,
            burst=burst,
            extraction_queries=extraction_queries,
            timeout_s=timeout_s,
        )
        write_output(render_check(probe, CheckFormat(fmt), color=color), output)
        probe_exit: int = probe.verdict.exit_code
        return probe_exit
    if path is None:
        raise ConfigError("give PATH (a model or project) or --target URL")
    given = [
        name
        for name, value in (
            ("--controls", controls),
            ("--target-header", target_headers),
            ("--token", token),
            ("--model", model),
            ("--insecure-tls", insecure_tls),
            ("--cacert", cacert),
        )
        if value
    ]
    if given:
        raise ConfigError(f"{', '.join(given)} only go with --target URL")
    status = None
    if stderr_is_terminal():
        from rich.console import Console

        status = Console(stderr=True).status(f"checking {path} ...")
        status.start()
    try:
        report, ctx = run_check(
            path,
            profile=profile,
            waivers=waivers,
            keys=keys,
            advisory_db=advisory_db,
            db_max_age=db_max_age,
            image_report=image_report,
            environment=environment,
            store=not no_store,
            sign_key=sign_key,
            jobs=jobs,
            store_path=store_path,
            inline_suppressions=inline_suppressions,
            scan_config=scan_config,
        )
    finally:
        if status is not None:
            status.stop()
    if bom_output is not None:
        bom = ctx.shared.get("bom")
        if bom is None:
            raise ConfigError("no ML-BOM was produced (see the ml-bom-present control)")
        write_output(json.dumps(bom, indent=2) + "\n", bom_output)
    write_output(render_check(report, CheckFormat(fmt), color=color), output)
    exit_code: int = report.verdict.exit_code
    return exit_code
