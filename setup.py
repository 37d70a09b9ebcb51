"""darbgen: DARB pruning and verified C code generation for microcontrollers."""
import re
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = re.search(r'__version__ = "([^"]+)"', (here / "darbgen" / "__init__.py").read_text()).group(1)

setup(
    name="darbgen",
    version=version,
    description="Density-adaptive regular-block (DARB) pruning and C code generation for Cortex-M microcontrollers",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # templates/ and runtime_c/ live at the top of the repository but ship inside the
    # package, so a plain (non-editable) `pip install .` has them: see darbgen/resources.py.
    # examples/ ships too, so `darbgen demo` finds its bundled model in any install.
    packages=find_packages(include=["darbgen", "darbgen.*"]) + ["darbgen.templates", "darbgen.runtime_c",
                                                                "darbgen.examples"],
    package_dir={"darbgen.templates": "templates", "darbgen.runtime_c": "runtime_c", "darbgen.examples": "examples"},
    package_data={"darbgen.templates": ["*", "**/*"], "darbgen.runtime_c": ["*", "**/*"],
                  "darbgen.examples": ["*.npz", "*.py", "firmware/*"]},
    install_requires=["numpy>=1.24", "numba>=0.59", "jinja2>=3.1", "tqdm>=4.60"],
    extras_require={
        # PyPI offers no CPU-only PyTorch for Linux: torch brings its CUDA libraries (the only big download)
        "test": ["pytest>=7", "pytest-xdist>=3.5", "hypothesis>=6.80", "scikit-learn>=1.3", "emlearn==0.23.2",
                 "onnx>=1.15", "onnxruntime>=1.17", "torch>=2.1", "keras>=3.15", "jax[cpu]>=0.10", "matplotlib>=3.7",
                 # .tflite / .h5 import, and the oracles the graph tests compare with (TFLite Micro, LiteRT)
                 "tflite>=2.18", "h5py>=3.8", "tflite-micro", "ai-edge-litert>=2.0"],
        # .tflite files (the flatbuffer parser; TensorFlow is never imported) and Keras 2 .h5 files
        "tflite": ["tflite>=2.18"],
        "h5": ["h5py>=3.8"],
        "sklearn": ["scikit-learn>=1.3"],
        "onnx": ["onnx>=1.15"],
        "torch": ["torch>=2.1"],
        "keras": ["keras>=3.15", "jax[cpu]>=0.10"],
        # examples/compare_emlearn.py uses emlearn internals: pinned exactly
        "examples": ["scikit-learn>=1.3", "emlearn==0.23.2", "matplotlib>=3.7"],
        # `darbgen report` draws its figures with matplotlib
        "report": ["matplotlib>=3.7"],
    },
    entry_points={"console_scripts": ["darbgen=darbgen.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: C",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Software Development :: Embedded Systems",
    ],
)
