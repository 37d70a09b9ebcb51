"""The table the runtime_c test harness runs a module's units from
(``darb_harness_table.c``, from ``templates/harness_table.c.j2``), written by
:mod:`darbgen.verify` next to the module it checks."""
from .sources import environment


def harness_table(module):
    """The C table the runtime_c harness runs the module's units (ops, then the model) from."""
    units = module.units
    return environment().get_template("harness_table.c.j2").render(
        module=module, layers=units, prefix=module.prefix, headers=module.extra.get("harness_headers", []),
        max_in=max(g.in_bytes for g in units), max_out=max(g.out_bytes for g in units))
