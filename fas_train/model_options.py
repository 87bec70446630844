"""A model's build options from fas-train's flags, routed by what each model's registration says it
takes (`@MODELS.register(name, options=(...))`): a flag given to a model that does not take it is a
one-line error naming the models that do."""

from __future__ import annotations

from pathlib import Path

from annotator.core.errors import AnnotatorError

from .models import MODELS

# build option -> its flag
FLAGS = {"alpha": "--alpha", "beta": "--beta", "pretrained": "--pretrained", "domain_key": "--domain-key",
         "backbone": "--backbone", "grl_lambda": "--grl-lambda", "video": "--video", "frames": "--frames",
         "video_batch": "--video-batch", "seg_classes": "--seg-classes", "w_con": "--w-con", "w_seg": "--w-seg",
         "scales": "--pyramid"}


def model_options(flags: dict, sources: list[str], protocol: str) -> dict:
    """The model_options of TrainConfig: the given model flags, parsed, checked against what the
    model takes; a model that takes `domains` learns one per training store or --domain-key value."""
    backend = MODELS.describe(flags["model"])
    given = _parsed(flags)
    for name in given:
        if name not in backend.options:
            takers = [f"--model {n}" for n in MODELS.names() if name in MODELS.describe(n).options]
            raise AnnotatorError(f"{FLAGS[name]} applies to {' and '.join(takers)}")
    if "domains" in backend.options:
        given.update(_domains(given.get("domain_key"), sources, protocol))
    return given


def _parsed(flags: dict) -> dict:
    """{option: value} of the model flags given, each parsed and checked on its own."""
    out = {k: flags[k] for k in ("alpha", "beta", "domain_key", "seg_classes", "w_con", "w_seg", "frames", "video_batch")
           if flags.get(k) is not None}
    if flags.get("video"):
        out["video"] = True
    if ("frames" in out or "video_batch" in out) and not flags.get("video"):
        raise AnnotatorError("--frames and --video-batch go with --video")
    for flag, name in (("--frames", "frames"), ("--video-batch", "video_batch")):
        if name in out and out[name] < 1:
            raise AnnotatorError(f"{flag} must be at least 1, got {out[name]}")
    if flags.get("pretrained") is not None:
        p = flags["pretrained"]
        out["pretrained"] = p if p == "imagenet" else str(Path(p).resolve())
    if flags.get("backbone") is not None:
        from .models.backbones import BACKBONES

        BACKBONES.get(flags["backbone"])  # an unknown name is a one-line error naming the known ones
        out["backbone"] = flags["backbone"]
    if flags.get("grl_lambda") is not None:
        out["grl_lambda"] = _grl(flags["grl_lambda"])
    if flags.get("pyramid") is not None:
        out["scales"] = _scales(flags["pyramid"])
    return out


def _grl(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        if text != "dann":
            raise AnnotatorError(f"--grl-lambda takes a number or `dann`, got {text!r}") from None
        return "dann"


def _scales(text: str) -> list[int]:
    try:
        scales = [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        scales = []
    if not scales or any(k < 1 or k > 32 or 32 % k for k in scales):
        raise AnnotatorError(f"--pyramid takes scales among 32, 16, 8, 4, 2, 1 (the store's levels), got {text!r}")
    return scales


def _domains(domain_key: str | None, sources: list[str], protocol: str) -> dict:
    """One domain per training store, or per value of the meta column `domain_key`."""
    if not domain_key:
        return {"domains": len(sources)}
    from .selection import select

    values = sorted({str(v) for v in select(sources, protocol, "train", columns=(domain_key,)).meta[domain_key]})
    if len(values) < 2:
        raise AnnotatorError(f"--domain-key {domain_key}: the training rows hold {len(values)} value(s) "
                             f"({', '.join(values)}); domains need at least 2")
    return {"domain_key": domain_key, "domain_values": values, "domains": len(values)}
