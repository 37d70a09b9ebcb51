"""C code generation: identifiers, array formatting and the jinja2 templates."""
from .emit import KERNELS, CModule, GeneratedLayer, generate, harness_table
from .names import c_identifier, unique_identifiers

__all__ = ["KERNELS", "CModule", "GeneratedLayer", "generate", "harness_table", "c_identifier",
           "unique_identifiers"]
