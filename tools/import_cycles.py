"""An import-linter contract for what its built-in ones leave out: no import cycle at all.

``acyclic_siblings`` finds cycles between the children of a package, but not one through a
package's own ``__init__`` (a submodule importing the face that imports it), and a layers
contract only sees the modules it names. This one follows every import between the modules
of ``packages`` (TYPE_CHECKING-only ones are left out when the session excludes them) and
names each cycle it finds, once.

    [[tool.importlinter.contracts]]
    type = "acyclic"  # with contract_types = ["acyclic: tools.import_cycles.AcyclicContract"]
    packages = ["proxy"]
"""

from __future__ import annotations

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class AcyclicContract(Contract):
    """No module of ``packages`` reaches itself through imports."""

    type_name = "acyclic"
    packages = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        cycles: list[tuple[str, ...]] = []
        seen: set[frozenset[str]] = set()
        for package in self.packages:  # type: ignore[attr-defined]
            modules = {package.name} | graph.find_descendants(package.name)
            for importer in sorted(modules):
                for imported in sorted(graph.find_modules_directly_imported_by(importer) & modules):
                    back = graph.find_shortest_chain(importer=imported, imported=importer)
                    if back is not None and frozenset(back) not in seen:
                        seen.add(frozenset(back))
                        cycles.append((importer, *back))
        return ContractCheck(kept=not cycles, warnings=[], metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error("Import cycle: " + " -> ".join(cycle))
            output.new_line()
