"""Build the Cython extensions of entity_linker.

Every ``.pyx`` under ``entity_linker/`` becomes one extension module, compiled
with -O3 against the numpy, cymem, preshed and murmurhash headers that the
build environment provides (see ``[build-system] requires``).
"""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = Path(__file__).parent
COMPILE_ARGS = ["-O3", "-Wno-unused-function", "-Wno-unreachable-code"]
COMPILER_DIRECTIVES = {
    "language_level": "3",
    "cdivision": True,
    "embedsignature": True,
}


def find_extensions():
    extensions = []
    for pyx in sorted((ROOT / "entity_linker").rglob("*.pyx")):
        relative = pyx.relative_to(ROOT).with_suffix("")
        extensions.append(
            Extension(
                ".".join(relative.parts),
                [str(pyx.relative_to(ROOT))],
                include_dirs=[numpy.get_include()],
                extra_compile_args=COMPILE_ARGS,
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            )
        )
    return extensions


setup(
    ext_modules=cythonize(find_extensions(), compiler_directives=COMPILER_DIRECTIVES),
)
