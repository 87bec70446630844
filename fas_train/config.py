"""The settings of one training run (RUN/config.json), checked before any work."""

from __future__ import annotations

from dataclasses import dataclass, field

from annotator.core.errors import AnnotatorError, SettingError
from fas_train import MAX_BATCH
from fas_train.models import MODELS, FasModel, create

CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"  # the epoch with the best dev figure (fas_train/dev_check.py)
CHECKPOINT_NAMES = {"last": CHECKPOINT, "best": BEST_CHECKPOINT}  # --checkpoint last|best


ANNOTATE_CONFIG = "annotate_config.json"  # how the first training store cropped its faces (fas-train infer)


@dataclass
class TrainConfig:
    model: str
    train: list[str]  # stores whose `train` group is learnt
    protocol: str = "split"
    dev: list[str] = field(default_factory=list)  # stores of the dev group (default: the train stores)
    test: list[str] = field(default_factory=list)  # stores of the test group (default: the train stores)
    epochs: int = 10
    batch: int = 32
    lr: float = 2e-3  # Fine-grained annotation: Adam, 0.002, halved every 200 epochs
    lr_step: int = 200
    weight_decay: float = 5e-5
    size: int | None = None  # input side; None: the store's crop size
    width: float = 1.0  # channel multiplier of the model (1 = the paper's)
    model_options: dict = field(default_factory=dict)  # e.g. {"alpha": 1, "beta": 1} for dccdn3
    mcrea: float = 0.0  # MCREA gamma (0: off); rho and scheme below
    mcrea_rho: int = 1
    mcrea_scheme: str = "integrated"
    augment: bool = True
    workers: int = 2
    seed: int = 0
    exclude_flagged: bool = False  # leave training rows flagged bad in label QA (qa/flag) out
    # --weight-by: a quality column whose value weighs each training row's pixel loss
    # (fas_train/selection.py row_weights: floor + (1 - floor) * clip(value, 0, 1)); "" = all weigh 1
    weight_by: str = ""
    weight_floor: float = 0.1
    threshold: str = "eer"  # the dev threshold rule of the per-epoch dev figures (as `fas-train eval --threshold`)
    best_by: str = "hter"  # the dev figure that picks best.pt: hter, acer, eer, auc, or the training loss
    patience: int = 0  # stop after this many epochs without a better best_by (0: never)

    def validate(self) -> None:
        MODELS.get(self.model)
        from annotator.config import check_range

        for name, v, lo in (("epochs", self.epochs, 1), ("workers", self.workers, 0)):
            if v < lo:
                raise SettingError(name, f"must be at least {lo}, got {v}")
        check_range("batch", self.batch, 1, MAX_BATCH)
        if self.lr_step < 1:
            raise SettingError("lr_step", f"must be at least 1 (epochs between learning-rate halvings), got {self.lr_step}")
        if not self.lr > 0:
            raise SettingError("lr", f"must be positive, got {self.lr}")
        if self.size is not None and self.size < 32:
            raise SettingError("size", f"must be at least 32, got {self.size}")
        self._validate_weighting()
        self._validate_reporting()
        if self.mcrea:
            from annotator.augment.mcrea import check_args

            try:
                check_args(self.mcrea, self.mcrea_rho, self.mcrea_scheme, ("--mcrea", "--mcrea-rho", "--mcrea-scheme"))
            except ValueError as e:
                raise AnnotatorError(str(e)) from None

    def _validate_weighting(self) -> None:
        if not 0.0 <= self.weight_floor <= 1.0:
            raise SettingError("weight_floor", f"must be in [0, 1], got {self.weight_floor}")

    def _validate_reporting(self) -> None:
        from fas_train.dev_check import BEST_BY
        from fas_train.metrics import RULE_USAGE, rule_problem

        if self.best_by not in BEST_BY:
            raise SettingError("best_by", f"unknown metric {self.best_by!r}; choose one of: {', '.join(BEST_BY)}")
        if self.patience < 0:
            raise SettingError("patience", f"must be 0 (never stop early) or more epochs, got {self.patience}")
        if rule_problem(self.threshold):  # a bad rule must fail now, not after the first epoch
            raise SettingError("threshold", f"{rule_problem(self.threshold)}; {RULE_USAGE}")

    @property
    def dev_stores(self) -> list[str]:
        return self.dev or self.train

    @property
    def test_stores(self) -> list[str]:
        return self.test or self.train

    def build_model(self, pretrained: bool = True) -> FasModel:
        """The model; pretrained=False skips loading backbone weights (a checkpoint replaces them anyway)."""
        options = {k: v for k, v in self.model_options.items() if pretrained or k != "pretrained"}
        return create(self.model, width=self.width, **options)
