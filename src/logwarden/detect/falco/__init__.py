"""Falco's rule language: rules files loaded unchanged and compiled for the engine."""

from logwarden.detect.falco.compiler import SOURCES, compile_definitions, load_falco

__all__ = ["SOURCES", "compile_definitions", "load_falco"]
