"""One module per alert destination, each a `Notifier`: a pure `render(alert)` and a
`send(payload)`; retries, queues and metrics live once in `alerts.delivery`."""
