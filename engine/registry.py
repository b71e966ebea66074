"""A tiny name → object registry, shared by datasets, backbones and experiments."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """Raised when a registry is asked for a name it does not hold; the message lists the choices."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def loose_key(name: str) -> str:
    """A name without case or punctuation: `mobilenet_v2`, `MobileNet-V2` → `mobilenetv2`."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


class Registry(Generic[T]):
    """Ordered mapping of names to entries; lookups of unknown names say what exists.

    With `loose=True`, lookups ignore case and punctuation (people type `resnet50` or
    `mobilenet_v2` for Keras' `ResNet50` and `MobileNetV2`); `canonical` gives the registered name.
    """

    def __init__(self, kind: str, *, loose: bool = False) -> None:
        self.kind = kind
        self.loose = loose
        self._entries: dict[str, T] = {}
        self._loose_names: dict[str, str] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if self.loose:
            other = self._loose_names.get(loose_key(name))
            if other is not None:
                raise ValueError(f"{self.kind} {name!r} cannot be told apart from {other!r}")
            self._loose_names[loose_key(name)] = name
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form: `@REGISTRY.register("name")`."""

        def deco(entry: T) -> T:
            return self.add(name, entry)

        return deco

    def canonical(self, name: str) -> str:
        """The registered spelling of `name`; UnknownName (listing the choices) if there is none."""
        if name in self._entries:
            return name
        if self.loose and loose_key(name) in self._loose_names:
            return self._loose_names[loose_key(name)]
        raise UnknownName(
            f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}"
        )

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._entries or (self.loose and loose_key(name) in self._loose_names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())
