"""The local stack: the cloud's shape on one machine (moto server, event-source poller, Triton)."""
