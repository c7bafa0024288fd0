"""logwarden: closes OWASP Kubernetes Top Ten K05, inadequate logging and monitoring."""

__version__ = "0.1.0"
