"""Media in, RGB frames out: image and video decoding, WMCA's HDF5 streams, and the sampling rules
that pick a video's frames."""
