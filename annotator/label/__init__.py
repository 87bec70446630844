"""Labels: the attack-type policy, the three-channel attack / live / background map, its pyramid,
pseudo-depth (docs/labels.md), and the quality signals of each row's labels."""

from .depth import depth_to_uint8, render_depth
from .policy import ATTACK_TYPES, LABEL_CHANNELS, Policy, Rule
from .pyramid import PYRAMID_SIZES, pyramid
from .quality import box_iou, channel_shares, prior_agreement, temporal_consistency
