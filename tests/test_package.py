"""The installed package ships what later stages need."""
import darbgen
from darbgen import resources


def test_templates_and_runtime_c_are_shipped():
    assert (resources.templates_dir() / "README.md").is_file()
    assert (resources.runtime_c_dir() / "README.md").is_file()
    for name in ("include/darb.h", "src/darb_fc_s8.c", "src/darb_internal.h", "harness/darb_harness.c",
                 "harness/darb_harness_host.c", "harness/darb_harness_target.c"):
        assert (resources.runtime_c_dir() / name).is_file(), name
    from darbgen.toolchain import cortex_m
    for name in cortex_m.IMAGE_FILES:
        assert (resources.runtime_c_dir() / "cortex_m" / name).is_file(), name
    for core in cortex_m.CORES.values():                              # a linker script per QEMU board
        assert (resources.runtime_c_dir() / "cortex_m" / "boards" / f"{core.board}.ld").is_file(), core.board
    for name in ("dense_layer.c.j2", "dense_layer.h.j2", "model.h.j2", "harness_table.c.j2", "_banner.j2"):
        assert (resources.templates_dir() / name).is_file(), name
    for name in ("recurrent.c.j2", "pool.c.j2", "softmax.c.j2", "model.c.j2"):
        assert (resources.templates_dir() / name).is_file(), name
    for name in ("digits_mlp.npz", "digits_cnn.npz", "firmware/classify.c"):
        assert (resources.examples_dir() / name).is_file(), name     # `darbgen demo` needs them installed


def test_public_api_is_documented():
    for name in ("prune", "prune_model", "encode", "decode", "matrix_stats", "generate", "verify",
                 "quantize_network", "Dense", "measure"):
        obj = getattr(darbgen, name)
        assert obj.__doc__ and len(obj.__doc__) > 40, name
    assert "prune" in dir(darbgen)
