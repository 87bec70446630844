"""Attack-type policy -> the three-channel attack / live / background map (docs/labels.md)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from annotator.core.errors import AnnotatorError
from annotator.face.regions import FACE_REGIONS, REGION_IDS
from annotator.face.priors import nose_line_side

from .depth import depth_to_uint8

LABEL_CHANNELS = ["attack", "live", "background"]
_SIDES = ("below_nose", "above_nose")
_GROUPS = {"face": FACE_REGIONS}


def _region_ids(name: str) -> tuple[int, ...]:
    if name in _GROUPS:
        return _GROUPS[name]
    if name in REGION_IDS and name != "background":
        return (REGION_IDS[name],)
    raise ValueError(name)


@dataclass(frozen=True)
class Rule:
    """Regions of one channel: (region ids, nose-line side or None) terms, united."""

    terms: tuple[tuple[tuple[int, ...], str | None], ...]

    @classmethod
    def parse(cls, names: list[str], where: str) -> "Rule":
        terms = []
        for item in names:
            name, _, side = str(item).partition("@")
            try:
                ids = _region_ids(name)
            except ValueError:
                known = ", ".join(["face"] + [n for n in REGION_IDS if n != "background"])
                raise AnnotatorError(f"{where}: unknown region {name!r}; known regions: {known}") from None
            if side and side not in _SIDES:
                raise AnnotatorError(f"{where}: unknown side {side!r} in {item!r}; use one of {', '.join(_SIDES)}")
            terms.append((ids, side or None))
        return cls(tuple(terms))

    def mask(self, region: np.ndarray, below_nose: np.ndarray | None) -> np.ndarray:
        out = np.zeros(region.shape, bool)
        for ids, side in self.terms:
            lut = np.zeros(256, bool)  # region id -> member: one gather instead of np.isin's sort
            lut[list(ids)] = True
            m = lut[region]
            if side is not None:
                if below_nose is None:
                    raise ValueError("a nose-line rule needs landmarks")
                m &= below_nose if side == "below_nose" else ~below_nose
            out |= m
        return out

    @property
    def instruments(self) -> list[int]:
        """The instrument region ids (occluder, pai_surface) among the rule's regions."""
        inst = {REGION_IDS["occluder"], REGION_IDS["pai_surface"]}
        return sorted({i for ids, _ in self.terms for i in ids} & inst)

    @property
    def needs_nose_line(self) -> bool:
        return any(side for _, side in self.terms)


@dataclass(frozen=True)
class Policy:
    """Per canonical attack type: which regions are attack and which are live (docs/labels.md)."""

    attack: dict[str, Rule]
    live: dict[str, Rule]
    outside_depth: float
    table: dict  # the resolved TOML content, stored in the store's config
    # Per type whose attack names an instrument region (occluder, pai_surface): the attack regions
    # used when the region map holds no instrument pixel (a segmenter without instruments, or one
    # whose instrument mask did not survive selection): the face parts the instrument usually covers.
    fallback: dict[str, Rule] = field(default_factory=dict)

    @property
    def attack_types(self) -> list[str]:
        return list(self.attack)

    @classmethod
    def from_table(cls, table: dict, where: str = "policy") -> "Policy":
        types = table.get("types")
        if not isinstance(types, dict) or not types:
            raise AnnotatorError(f"{where}: expected a [types.<name>] table per attack type, got types = {types!r}")
        attack, live, fallback = {}, {}, {}
        for name, entry in types.items():
            if not isinstance(entry, dict) or set(entry) - {"attack", "live", "fallback"}:
                raise AnnotatorError(f"{where}: [types.{name}] must hold only 'attack', 'live' and 'fallback' lists")
            here = f"{where} [types.{name}]"
            attack[name] = Rule.parse(_names(entry, "attack", here), f"{here}.attack")
            live[name] = Rule.parse(_names(entry, "live", here), f"{here}.live")
            if "fallback" in entry:
                fallback[name] = Rule.parse(_names(entry, "fallback", here), f"{here}.fallback")
        od = table.get("outside_depth", 0.0)
        # TOML's true is an int to Python, but no depth value
        if isinstance(od, bool) or not isinstance(od, (int, float)) or not 0.0 <= od <= 1.0:
            raise AnnotatorError(f"{where}: outside_depth must be a number in [0, 1], got {od!r}")
        return cls(attack, live, float(od), table, fallback)

    @classmethod
    def default(cls) -> "Policy":
        return cls.from_table(_default_table(), "built-in policy")

    @classmethod
    def load(cls, path: str | Path | None) -> "Policy":
        """The shipped policy, with the [types.*] entries and options of `path` (TOML) on top."""
        table = _default_table()
        if path is None:
            return cls.from_table(table, "built-in policy")
        try:
            override = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise AnnotatorError(f"policy file {path} does not exist") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise AnnotatorError(f"policy file {path} is not valid TOML: {e}") from None
        if not isinstance(override.get("types", {}), dict):
            raise AnnotatorError(f"policy file {path}: types must be tables [types.<name>] with attack and live "
                                 f"lists, got types = {override['types']!r}; see annotator/label/policy.toml")
        unknown = set(override.get("types", {})) - set(table["types"])
        if unknown:
            raise AnnotatorError(
                f"policy file {path}: unknown attack type(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(table['types'])}"
            )
        merged = {**table, **{k: v for k, v in override.items() if k != "types"}}
        merged["types"] = {**table["types"], **override.get("types", {})}
        return cls.from_table(merged, f"policy file {path}")

    def check_type(self, attack_type: str) -> None:
        if attack_type not in self.attack:
            raise AnnotatorError(
                f"unknown attack type {attack_type!r}; known types: {', '.join(self.attack_types)}"
            )

    def fuse(self, region: np.ndarray, depth: np.ndarray, attack_type: str,
             landmarks: np.ndarray | None = None) -> np.ndarray:
        """Three-channel label (3, S, S) uint8 = round(255 * v) for channels attack, live, background.

        region: (S, S) uint8 region ids; depth: (S, S) float in [0, 1] (0 outside the face) or its
        uint8 form round(255 * D). attack = D on P (P from the policy; `outside_depth` where D
        rounds to 0); live = D on the live regions minus P minus occluders; background = 255 where
        neither attack nor live is non-zero. A type with a `fallback` list whose attack regions hold
        no instrument pixel in `region` takes P from the fallback instead.
        """
        self.check_type(attack_type)
        size = region.shape[0]
        a_rule, l_rule = self.attack[attack_type], self.live[attack_type]
        if attack_type in self.fallback and not np.isin(region, a_rule.instruments).any():
            a_rule = self.fallback[attack_type]  # no instrument pixel: the parts it usually covers
        below = None
        if a_rule.needs_nose_line or l_rule.needs_nose_line:
            below = nose_line_side(landmarks, size)
        p = a_rule.mask(region, below)
        live_mask = l_rule.mask(region, below) & ~p & (region != REGION_IDS["occluder"])
        d8 = depth if depth.dtype == np.uint8 else depth_to_uint8(depth)
        out = np.zeros((3,) + region.shape, np.uint8)
        out[0] = np.where(p, d8, 0)
        if self.outside_depth > 0:
            out[0][p & (d8 == 0)] = round(255 * self.outside_depth)
        out[1] = np.where(live_mask, d8, 0)
        out[2] = np.where((out[0] == 0) & (out[1] == 0), 255, 0)
        return out


def _names(entry: dict, channel: str, where: str) -> list:
    """A type's region list for `channel`; a bare string or number is refused, not read letter by letter."""
    names = entry.get(channel, [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise AnnotatorError(f"{where}: {channel} must be a list of region names such as [\"skin\"], got {names!r}")
    return names


def _default_table() -> dict:
    return tomllib.loads(resources.files("annotator.label").joinpath("policy.toml").read_text())


ATTACK_TYPES: list[str] = list(_default_table()["types"])  # the canonical attack types
