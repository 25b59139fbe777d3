"""Regenerate the Python code for etcd's v3 API from kv's own .proto files.

Introduced in chapter 1. kv speaks etcd's gRPC API, so its messages and services are declared
in ``kv/api/*/*.proto`` with etcd's package, message and field names and numbers. This module
runs ``grpc_tools.protoc`` from the repository root (``-I .``, so a proto imports another by its
path, ``import "kv/api/mvccpb/kv.proto";``, and Python imports ``from kv.api.mvccpb import
kv_pb2``) and writes, beside each ``X.proto``:

- ``X_pb2.py`` and ``X_pb2.pyi``: the messages and their type stubs,
- ``X_pb2_grpc.py``: the gRPC client stubs and servicer base classes,
- ``X_pb2_grpc.pyi``: typed stubs for those, from mypy-protobuf's ``protoc-gen-mypy_grpc``.

Usage::

    python -m kv.api.generate          # regenerate (and delete generated files of removed protos)
    python -m kv.api.generate --check  # CI drift check: exit 1 if the tree is not up to date

The generated files are committed, so running kv needs no protoc; ``--check`` keeps them honest.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

API_DIR = Path(__file__).resolve().parent
REPO_ROOT = API_DIR.parent.parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
MYPY_GRPC_PLUGIN = "protoc-gen-mypy_grpc"
# The output depends on these tools' versions; pyproject.toml pins them.
GENERATORS = ("grpcio-tools", "mypy-protobuf")


@dataclass
class Drift:
    """How the generated files in the tree differ from freshly generated ones."""

    changed: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    stale: list[Path] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.changed or self.missing or self.stale)

    def lines(self, words: tuple[str, str, str] = ("changed", "missing", "stale")) -> list[str]:
        """One line per file, repo-relative, labelled with ``words`` for the three kinds."""
        kinds = zip(words, (self.changed, self.missing, self.stale), strict=True)
        return [f"  {word}: {path.as_posix()}" for word, paths in kinds for path in paths]


def generator_versions() -> str:
    """The installed versions of the code generators, for drift messages."""

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return ", ".join(f"{name} {installed(name)}" for name in GENERATORS)


def proto_files(root: Path = REPO_ROOT) -> list[Path]:
    """The .proto files of the API, relative to the repository root, in a stable order."""
    return sorted(path.relative_to(root) for path in (root / "kv" / "api").glob("*/*.proto"))


def generated_files(root: Path) -> set[Path]:
    """Generated files found under ``root/kv/api``, relative to ``root``."""
    found = (
        path for suffix in GENERATED_SUFFIXES for path in (root / "kv" / "api").glob(f"*/*{suffix}")
    )
    return {path.relative_to(root) for path in found}


def find_mypy_grpc_plugin() -> Path:
    """mypy-protobuf's grpc plugin: beside this Python first (venvs), else on PATH."""
    beside_python = Path(sys.executable).parent / MYPY_GRPC_PLUGIN
    if beside_python.is_file():
        return beside_python
    on_path = shutil.which(MYPY_GRPC_PLUGIN)
    if on_path is None:
        raise SystemExit(f"{MYPY_GRPC_PLUGIN} not found: pip install mypy-protobuf==5.1.0")
    return Path(on_path)


def protoc_command(protos: list[Path], out_dir: Path, plugin: Path) -> list[str]:
    """The grpc_tools.protoc command line that writes every output for ``protos`` to out_dir."""
    out = str(out_dir)
    return [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-I",
        ".",
        f"--plugin={MYPY_GRPC_PLUGIN}={plugin}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out={out}",
        *(path.as_posix() for path in protos),
    ]


def run_protoc(out_dir: Path) -> set[Path]:
    """Generate into ``out_dir`` (mirroring the repo layout); returns the relative paths."""
    command = protoc_command(proto_files(), out_dir, find_mypy_grpc_plugin())
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"protoc failed (exit {result.returncode}):\n{result.stderr}")
    return generated_files(out_dir)


def compare(fresh_dir: Path, fresh: set[Path]) -> Drift:
    """Compare freshly generated files with the ones in the repository tree."""
    drift = Drift()
    for path in sorted(fresh):
        in_tree = REPO_ROOT / path
        if not in_tree.is_file():
            drift.missing.append(path)
        elif in_tree.read_bytes() != (fresh_dir / path).read_bytes():
            drift.changed.append(path)
    drift.stale = sorted(generated_files(REPO_ROOT) - fresh)
    return drift


def apply(fresh_dir: Path, drift: Drift) -> None:
    """Bring the tree up to date: write changed and missing files, delete stale ones."""
    for path in drift.changed + drift.missing:
        shutil.copyfile(fresh_dir / path, REPO_ROOT / path)
    for path in drift.stale:
        (REPO_ROOT / path).unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kv.api.generate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only compare with the committed files; exit 1 if any differs",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kv-api-") as tmp:
        fresh_dir = Path(tmp)
        drift = compare(fresh_dir, run_protoc(fresh_dir))
        if args.check:
            if drift.is_empty():
                print("kv.api: generated code is up to date with the .proto files")
                return 0
            print("kv.api: generated code is out of date with the .proto files:", file=sys.stderr)
            print("\n".join(drift.lines()), file=sys.stderr)
            print("run `python -m kv.api.generate` and commit the result", file=sys.stderr)
            print(f"(generated here with {generator_versions()})", file=sys.stderr)
            return 1
        apply(fresh_dir, drift)
    if drift.is_empty():
        print("kv.api: generated code was already up to date")
    else:
        print("\n".join(drift.lines(("updated", "created", "deleted"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
