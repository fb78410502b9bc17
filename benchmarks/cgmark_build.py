"""Compile ``cgmark.c`` (valgrind client requests, named trampolines) once and import it.

Needs a C compiler and valgrind's headers (``valgrind/callgrind.h``); the build is cached
in the temporary directory by source hash and Python version.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import ModuleType

SOURCE = Path(__file__).with_name("cgmark.c")


def build() -> Path:
    """The path of the compiled extension, building it when the cache lacks it."""
    source = SOURCE.read_bytes()
    tag = hashlib.sha256(source + sys.version.encode()).hexdigest()[:16]
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = Path(tempfile.gettempdir()) / f"costrouter-cgmark-{tag}" / f"cgmark{suffix}"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("callgrind_bench needs a C compiler (cc or gcc) to build benchmarks/cgmark.c")
    target.parent.mkdir(parents=True, exist_ok=True)
    include = sysconfig.get_paths()["include"]
    command = [compiler, "-O2", "-shared", "-fPIC", f"-I{include}", str(SOURCE), "-o", str(target)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"building {SOURCE.name} failed ({' '.join(command)}):\n{result.stderr}")
    return target


def load() -> ModuleType:
    """Import the compiled ``cgmark`` module."""
    path = build()
    spec = importlib.util.spec_from_file_location("cgmark", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
