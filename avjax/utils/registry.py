"""Import by name: how configs choose components (big_vision style).

Every component kind (model, loss, evaluator, dataset generator, trainer)
is a module with one fixed signature, looked up from a config string:

  * a short name: a key of the kind's table (e.g. loss type `han` ->
    `avjax.losses.avvp`) or, without a table, a module of the kind's package
    (evaluator `veba` -> `avjax.evaluators.veba`), or
  * a full module path (any name with a dot, e.g. `my_pkg.my_model`): a
    plugin outside avjax, importable from `sys.path` (`PYTHONPATH`).

Looking a component up by name is also how a lower layer reaches a higher
one without importing it (the loop and the evaluators).

So a new component is one new module (plus a config naming it) and no edit
elsewhere; a short name is added to a table only to ship it with avjax.
"""

import importlib
import pkgutil
from types import ModuleType
from typing import Mapping, Optional


def load(kind: str, name: str, table: Optional[Mapping[str, str]] = None,
         package: Optional[str] = None) -> ModuleType:
  """The module of component `name`.

  Args:
    kind: what is looked up, for messages (e.g. "config.model.name").
    name: the config's value.
    table: registered short names -> module paths; or
    package: the package whose modules are the short names.

  Raises:
    ValueError: an unknown short name (lists the valid ones).
    ModuleNotFoundError: a module path that cannot be imported.
  """
  if table is None:
    pkg = importlib.import_module(package)
    table = {m.name: f"{package}.{m.name}"  # `common`: shared helpers
             for m in pkgutil.iter_modules(pkg.__path__)
             if not m.name.startswith("_") and m.name != "common"}
  if name in table:
    return importlib.import_module(table[name])
  if "." in str(name):
    try:
      return importlib.import_module(name)
    except ModuleNotFoundError as e:
      if e.name and name.startswith(e.name):
        raise ModuleNotFoundError(
            f"{kind}={name!r}: no module {e.name!r} on sys.path (a plugin "
            "module must be importable: add its folder to PYTHONPATH)",
            name=e.name) from e
      raise
  raise ValueError(f"unknown {kind}={name!r}; valid: "
                   f"{', '.join(sorted(table))} or a full module path "
                   "(my_pkg.my_module)")
