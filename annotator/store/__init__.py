"""The label store and its services (docs/store.md): the Zarr layout (group.py), shards and their
commit markers (shards.py), the schema, verify and repair, QA flags, inspect, failure records, and
where commands may write.

`from annotator import store` is the store's public face: the names below.
"""

from .group import (COORDINATES, CREATING, LOCK_FILE, NEWER_SCHEMA, READABLE_SCHEMAS, SCHEMA_VERSION, WRITE_CONFIG,
                    column, compressors, create, create_array, exists, failed_rows, finalize, is_store, newer,
                    open_store, protocol_names, read_meta, remove, shard_size_of, unfinished,
                    write_channel_coordinates, write_protocols, write_shard)
from .schema import META_COLUMNS, OPTIONAL_ARRAYS, OPTIONAL_COLUMNS, array_specs, fill_value, landmark_points, stored_layout
from .shards import (FAILED_DIR, SHARDS_DIR, TEMPORARY, Shard, clear_failed, commit, committed, committed_ids,
                     committed_rows, failed, mark_failed, plan_shards, read_marker, write_atomic)
