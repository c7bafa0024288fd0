"""The config file of `logwarden run`: one typed schema, its loader and its documentation.

    from logwarden.config import load
    config = load("logwarden.yaml")   # or load(None): the embedded default

`load` reports every problem of a file at once in a `ConfigError`, each with its
file:line and path. The schema lives in `schema`; docs/configuration.md is generated
from it by `python -m logwarden.config.docs`.
"""

from __future__ import annotations

from logwarden.config.alerting import AlertsConfig
from logwarden.config.errors import ConfigError, Problem
from logwarden.config.loader import dump, load, load_text
from logwarden.config.receivers import ReceiverConfig
from logwarden.config.schema import (
    Config,
    DetectConfig,
    K8sAuditFileSource,
    K8sAuditWebhookSource,
    LedgerConfig,
    PipelineConfig,
    RedactConfig,
    ServiceConfig,
    SourceConfig,
)

__all__ = [
    "AlertsConfig",
    "Config",
    "ConfigError",
    "DetectConfig",
    "K8sAuditFileSource",
    "K8sAuditWebhookSource",
    "LedgerConfig",
    "PipelineConfig",
    "Problem",
    "ReceiverConfig",
    "RedactConfig",
    "ServiceConfig",
    "SourceConfig",
    "dump",
    "load",
    "load_text",
]
