"""Builds the igla Python package: the extension igla._igla with the project's CMake (target _igla),
then the pure-Python files of python/igla. Used by `pip install --no-build-isolation .`.

Environment: IGLA_CMAKE_ARGS (extra configure arguments, e.g. "-DIGLA_CUDA=ON"),
IGLA_BUILD_JOBS (parallel jobs, default: all cores), IGLA_PIP_BUILD_DIR (the CMake build folder,
default build/pip, reused between installs).
"""
import os
import re
import shlex
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(igla VERSION ([0-9.]+)", f.read()).group(1)


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.environ.get("IGLA_PIP_BUILD_DIR", os.path.join(ROOT, "build", "pip"))
        out_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        configure = [
            "cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython3_EXECUTABLE={sys.executable}", "-DIGLA_PYTHON=ON", "-DIGLA_TESTS=OFF",
        ] + shlex.split(os.environ.get("IGLA_CMAKE_ARGS", ""))
        jobs = os.environ.get("IGLA_BUILD_JOBS", str(os.cpu_count() or 1))
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", build_dir, "--target", "_igla", "-j", jobs], check=True)
        # The module is written to the build tree's python/igla; setuptools wants it at out_dir.
        built = os.path.join(build_dir, "python", "igla", os.path.basename(self.get_ext_fullpath(ext.name)))
        if not os.path.exists(built):
            raise RuntimeError(f"CMake did not build {built}: is pybind11-dev installed (apt-get install "
                               f"pybind11-dev python3-dev)? See the configure output above.")
        os.makedirs(out_dir, exist_ok=True)
        self.copy_file(built, self.get_ext_fullpath(ext.name))


setup(
    version=version(),
    packages=["igla"],
    package_dir={"": "python"},
    package_data={"igla": ["*.pyi", "py.typed"]},
    ext_modules=[CMakeExtension("igla._igla")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
    # setuptools' own build folders inside the CMake one, not in the project's build/ tree itself.
    options={"build": {"build_base": os.path.join("build", "pip", "setuptools")}},
)
