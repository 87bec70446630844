"""The command-line programs `annotate` and `fas-train`: they parse, validate and call the libraries
(annotator, pipelines, trainer), which never import this package."""
