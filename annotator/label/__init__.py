"""Labels: the attack-type policy, the three-channel attack / live / background map, its pyramid, and
pseudo-depth (docs/labels.md)."""

from .depth import depth_to_uint8, render_depth
from .policy import ATTACK_TYPES, LABEL_CHANNELS, Policy, Rule
from .pyramid import PYRAMID_SIZES, pyramid
