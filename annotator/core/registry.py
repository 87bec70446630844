"""Name -> backend registries (datasets, detectors, landmarkers, segmenters, exporters, models).

A registered backend describes itself (`Backend`): the landmark layout it writes, the run-time settings
it takes (a device among them), how its build options are checked before any work (a checkpoint found,
loaded and hashed for provenance), the other landmarker that checks it. Callers ask the description,
never the name, so a new backend is its own file and one `@REGISTRY.register(...)`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from .errors import AnnotatorError

T = TypeVar("T")


def _no_options(backend: "Backend", options: dict) -> dict:
    if options:
        raise AnnotatorError(f"{backend.kind} {backend.name!r} takes no options; got {', '.join(sorted(options))}")
    return {}


@dataclass(frozen=True)
class Backend(Generic[T]):
    """One registered backend: its factory and what callers need to know of it.

    layout: the landmark layout a landmarker writes (annotator/face/layouts.py), else None.
    runtime: the run-time settings its factory takes ("device", "batch", "compile"): results agree
        across them, so a resume may change them; "device" also asks a cluster for a GPU.
    prepare: options dict -> the options resolved for the store's provenance (paths made absolute,
        checkpoints loaded and hashed), raising a one-line error before any work; None: takes no options.
    locate: (options recorded in a store, {option: path given here or None}) -> the options with
        their files found on this machine and checked against the recorded hashes; None: nothing to find.
    check_with: the landmarker `--landmark-check` runs beside this one.
    options: the build options (keyword arguments) it takes from the command line (a model's
        --alpha, --pretrained, ...); the command refuses one it does not take.
    """

    kind: str
    name: str
    factory: Callable[..., T]
    layout: str | None = None
    runtime: tuple[str, ...] = ()
    prepare: Callable[[dict], dict] | None = None
    locate: Callable[[dict, dict], dict] | None = None
    check_with: str | None = None
    options: tuple[str, ...] = ()

    @property
    def uses_device(self) -> bool:
        return "device" in self.runtime

    def prepare_options(self, options: dict) -> dict:
        """The build options checked and resolved (module doc of `prepare`)."""
        return self.prepare(options) if self.prepare else _no_options(self, options)

    def locate_options(self, options: dict, given: dict) -> dict:
        """A store's options with their files found here (`locate`); paths given to a backend that
        records none are refused."""
        if self.locate:
            return self.locate(options, given)
        if any(given.values()):
            raise AnnotatorError(f"the store's {self.kind} {self.name!r} takes no weights: "
                                 f"{', '.join(k for k, v in given.items() if v)} do not apply")
        return dict(options)

    def create(self, options: dict | None = None, runtime: dict | None = None) -> T:
        """The backend built from its options and the run-time settings it takes (others are left out)."""
        mine = {k: v for k, v in (runtime or {}).items() if k in self.runtime}
        return self.factory(**(options or {}), **mine)


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._backends: dict[str, Backend[T]] = {}

    def register(self, name: str, **traits) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a factory (a class or function) under `name` with its Backend traits."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._backends:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._backends[name] = Backend(self.kind, name, factory, **traits)
            return factory

        return deco

    def unregister(self, name: str) -> None:
        """Remove a backend (tests register fakes and take them out again)."""
        self._backends.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._backends)

    def describe(self, name: str) -> Backend[T]:
        try:
            return self._backends[name]
        except KeyError:
            raise AnnotatorError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}{self._guess(name)}"
            ) from None

    def get(self, name: str) -> Callable[..., T]:
        return self.describe(name).factory

    def _guess(self, name: str) -> str:
        """'; did you mean X?' for the closest registered name, as click does for a mistyped flag:
        the list alone leaves the reader to spot 'replay-attack' for 'replay_attack'."""

        # case and the -/_ spelling carry no meaning in a name: compare without them
        def key(text) -> str:
            return str(text).lower().replace("_", "").replace("-", "")

        keys = {key(n): n for n in self.names()}
        close = difflib.get_close_matches(key(name), list(keys), n=1)
        return f"; did you mean {keys[close[0]]!r}?" if close else ""

    def create(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def __contains__(self, name: str) -> bool:
        return name in self._backends
