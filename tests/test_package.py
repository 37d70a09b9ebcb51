"""The installed package ships what later stages need."""
import darbgen
from darbgen import resources


def test_templates_and_runtime_c_are_shipped():
    assert (resources.templates_dir() / "README.md").is_file()
    assert (resources.runtime_c_dir() / "README.md").is_file()


def test_public_api_is_documented():
    for name in ("prune", "prune_model", "encode", "decode", "matrix_stats"):
        obj = getattr(darbgen, name)
        assert obj.__doc__ and len(obj.__doc__) > 40, name
    assert "prune" in dir(darbgen)
