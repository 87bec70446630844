"""The label store and its services (docs/store.md): the Zarr layout and its schema (group.py,
schema.py), verify and repair, QA flags, inspect, failure records, and where commands may write.

`from annotator import store` is the store's public face: the names below, from group.py and schema.py.
"""

from .group import (COORDINATES, CREATING, FAILED_DIR, LOCK_FILE, NEWER_SCHEMA, READABLE_SCHEMAS, SCHEMA_VERSION,
                    SHARDS_DIR, TEMPORARY, WRITE_CONFIG, Shard, clear_failed, column, commit, committed, committed_ids,
                    committed_rows, compressors, create, create_array, exists, failed, failed_rows, finalize, is_store,
                    mark_failed, newer, open_store, plan_shards, protocol_names, read_marker, read_meta, remove,
                    shard_size_of, unfinished, write_atomic, write_channel_coordinates, write_protocols, write_shard)
from .schema import META_COLUMNS, OPTIONAL_COLUMNS, array_specs, fill_value, landmark_points, stored_layout
