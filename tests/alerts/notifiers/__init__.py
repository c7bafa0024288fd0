"""Tests of `logwarden.alerts.notifiers` (a package, so its conftest is `notifiers.conftest`
and not the `conftest` other tests import)."""
