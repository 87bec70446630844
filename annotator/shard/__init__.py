"""The frame pipeline: one shard of sample references in, the store's arrays for those rows out
(plain numpy; the unit of work). pipeline.py runs the stages, frames.py decodes, locate.py finds the
face, models.py builds the backends from a config."""

from .frames import load_frames
from .locate import (Located, frame_to_crop, locate, orient_box, output_crop, settle_rotation,
                     upright_turn)
from .models import Models, build_fallback, build_landmarker, build_models
from .pipeline import STAGES, ShardResult, annotate_shard, check_landmarks, crop_faces, segment_and_fuse
