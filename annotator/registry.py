"""Plain name -> factory registries for backends (datasets, detectors, segmenters, ...)."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import AnnotatorError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._factories[name] = factory
            return factory

        return deco

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            raise AnnotatorError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}{self._guess(name)}"
            ) from None

    def _guess(self, name: str) -> str:
        """'; did you mean X?' for the closest registered name, as click does for a mistyped flag:
        the list alone leaves the reader to spot 'replay-attack' for 'replay_attack'."""
        import difflib

        # case and the -/_ spelling carry no meaning in a name: compare without them
        def key(text) -> str:
            return str(text).lower().replace("_", "").replace("-", "")

        keys = {key(n): n for n in self.names()}
        close = difflib.get_close_matches(key(name), list(keys), n=1)
        return f"; did you mean {keys[close[0]]!r}?" if close else ""

    def create(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def __contains__(self, name: str) -> bool:
        return name in self._factories
