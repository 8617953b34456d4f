"""Run the mltrust CLI as if only the core dependencies were installed (`pip install mltrust`).

Every optional extra's top-level package is made unimportable before mltrust is imported, so a
command that needs one must say which extra to install instead of crashing.

    python minimal_install.py ARGS...        # one command, like `mltrust ARGS...`
    import minimal_install; minimal_install.block_extras()   # then import mltrust yourself
"""

import sys

#: Top-level packages of the optional extras (pyproject.toml), made unimportable.
EXTRAS = {
    "numpy", "scipy", "sklearn", "pandas", "joblib", "torch", "starlette", "uvicorn", "jwt",
    "httpx", "httptools", "uvloop", "celpy", "cel", "common_expression_language", "bandit",
    "cyclonedx", "jsonschema", "matplotlib", "onnx", "onnxruntime", "h5py", "blake3",
    "safetensors", "gguf", "model_signing", "mlflow", "kfp", "ray", "kubernetes", "psycopg",
    "redis", "mkdocs", "skl2onnx",
}  # fmt: skip


class _Block:
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in EXTRAS:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def block_extras() -> None:
    """Make the extras unimportable from now on (call before importing mltrust)."""
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in EXTRAS)
    if loaded:
        raise RuntimeError(f"already imported: {loaded}")
    if not any(isinstance(finder, _Block) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Block())


if __name__ == "__main__":
    block_extras()

    from mltrust.cli._main import main

    sys.exit(main(sys.argv[1:]))
