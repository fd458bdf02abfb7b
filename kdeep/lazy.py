"""Lazy package attributes: names whose modules import TensorFlow load on first access, then stay cached."""
import importlib
from typing import Any, Callable


def lazy_getattr(namespace: dict[str, Any], table: dict[str, str]) -> Callable[[str], Any]:
    """Returns a module-level `__getattr__` that imports `table[name]` on first access to `name`.

    Args:
        namespace: the package's `globals()` (the loaded value is cached there).
        table: attribute name -> the module that defines it.

    Returns:
        The `__getattr__` function to assign in the package's `__init__`.
    """

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name]), name)
        namespace[name] = value  # binds the function over a same-named submodule the import set
        return value

    return __getattr__
