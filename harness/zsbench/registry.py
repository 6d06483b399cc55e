"""A typed, name-keyed registry of component specs with "did you mean" errors."""
from __future__ import annotations

import difflib
from typing import Generic, Iterator, TypeVar

from .api import ZsbenchError
from .specs import Spec

S = TypeVar("S", bound=Spec)


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class UnknownNameError(ZsbenchError):
    pass


class Registry(Generic[S]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._specs: dict[str, S] = {}

    def add(self, spec: S) -> None:
        prev = self._specs.get(spec.name)
        if prev is not None:
            raise ZsbenchError(
                f"duplicate {self.kind[:-1]} name {spec.name!r}: declared by plugin "
                f"{prev.plugin!r} (distribution {prev.distribution or '?'}) and by plugin "
                f"{spec.plugin!r} (distribution {spec.distribution or '?'})")
        self._specs[spec.name] = spec

    def get(self, name: str) -> S:
        try:
            return self._specs[name]
        except KeyError:
            known = sorted(self._specs)
            raise UnknownNameError(
                f"unknown {self.kind[:-1].replace('_', ' ')} {name!r}{did_you_mean(name, known)}"
                f" (available: {', '.join(known) or 'none'})") from None

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[S]:
        return iter(self._specs[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._specs)
