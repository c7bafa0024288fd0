"""Sigma rules: parsed by pySigma, mapped by processing pipelines, compiled for the engine."""

from logwarden.detect.sigma.loader import (
    DEFAULT_PIPELINES,
    LOGSOURCES,
    load_sigma,
    source_of,
    sources_of,
)

__all__ = ["DEFAULT_PIPELINES", "LOGSOURCES", "load_sigma", "source_of", "sources_of"]
