"""File slots: how many numbered files a video gets in a peer's layout, and which exported frame
each one shows, so that the peer's own loader, unchanged, reads every exported video and picks the
frames it means to (docs/exports.md, "Frames the peers' loaders pick").

The peers' loaders count a video's files and pick ids by arithmetic on that count. On their own
data (every frame of a video) the arithmetic is sound; on a video of few exported frames it raises
(CDCN's and SSAN's training loaders draw from an empty range for one image), repeats one frame
(CDCN's and SSAN's test loaders step by count // 10, which is 0 below 10 files) or reads past the
end (SSDG's sample_frames takes position 6 + j * floor(n / K)). A video whose frames are too few is
therefore given more files than frames, each a hard link to (or, where links are not possible, a
copy of) the file of one frame; from the count where the arithmetic is sound, files and frames are
one to one, exactly as in the peers' data.

Each function maps a video of `count` exported frames to a list: entry s is the frame (0-based
rank in the video) that file slot s shows."""

from __future__ import annotations

import math


def cyclic(count: int, slots: int) -> list[int]:
    """slots files showing the frames 0, 1, ..., count - 1, 0, 1, ... in turn."""
    return [s % count for s in range(slots)]


def drawn_in_turn(count: int, unreached: int) -> list[int]:
    """The slots of CDCN's and SSAN's loaders (ids counted from the folder: training draws from all
    but the last `unreached` ids, test takes ids 1 + i * (M // 10), i < 8). From 10 frames one id per
    frame, as their data; below, M = unreached + count * ceil((10 - unreached) / count) ids showing
    the frames in turn: M >= 10 (a test step of 1: ids 1..8 show every frame, the first 8 of 9) and
    the ids training draws hold every frame equally often."""
    if count >= 10:
        return list(range(count))
    return cyclic(count, unreached + count * math.ceil((10 - unreached) / count))


def cdcn_slots(count: int) -> list[int]:
    """CDCN (ids 1..M, slot s is id s + 1): training draws an id from 1..M-2 (M: the files of the
    video's map folder), so the last 2 are never drawn; val/test counts the image folder's files
    divided by 3. Below 10 frames: 2 + count * ceil(8 / count) ids."""
    return drawn_in_turn(count, 2)


def ssan_slots(count: int) -> list[int]:
    """SSAN (ids 0..M-1): training draws an id from 0..M-2 (M: the video folder's *.jpg), so the last
    is never drawn. Below 10 frames: 1 + count * ceil(9 / count) ids."""
    return drawn_in_turn(count, 1)


SSDG_MIN = 14  # the fewest files for which 6 + floor(n / 2) is a position of the video (K = 2)


def ssdg_slots(count: int) -> list[int]:
    """SSDG's sample_frames takes positions 6 + j * floor(n / K), j < K, of a video's n files (K = 1
    per training video, 2 per test video in its configs). Below 14 frames the video is stretched
    over 14 files, file s showing frame floor(s * count / 14): the positions then fall on the frames
    at the same relative times as in a 14-frame video (two exported frames, as `--sampling
    flip-mcio` keeps, come out as themselves: K = 2 takes frame 0 and frame 1)."""
    slots = max(count, SSDG_MIN)
    return [s * count // slots for s in range(slots)]
