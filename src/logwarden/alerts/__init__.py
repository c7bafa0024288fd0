"""Alerts after detection: delivery to the places teams watch (`notifiers/`, `delivery`)."""
