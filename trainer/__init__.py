"""Companion trainer: reads label stores, trains and evaluates FAS models (`fas-train`)."""
