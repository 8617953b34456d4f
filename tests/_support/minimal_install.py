"""Run the mltrust CLI as if only the core dependencies were installed (`pip install mltrust`).

Every optional extra's top-level package is made unimportable before mltrust is imported, so a
command that needs one must say which extra to install instead of crashing.
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


sys.meta_path.insert(0, _Block())

from mltrust.cli._main import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
