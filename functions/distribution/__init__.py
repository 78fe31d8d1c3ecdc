"""Model distribution: publish signed model versions and roll them out to devices through channels.

The parts, each in its own module:

- ``signing``: the Ed25519 key that signs manifests and rollback directives (a PEM file on one
  machine, a Secrets Manager secret in the cloud);
- ``publish``: upload ``model.onnx`` + a signed ``manifest.json`` (with ``expires_at``) under
  ``storage_layout.model_key``/``manifest_key``; a published version is immutable;
- ``channels``: the ``shadow | canary | stable`` pointers (``storage_layout.channel_key``) and the
  history of every change (``storage_layout.channel_history_key``);
- ``bucketing``: the deterministic device → rollout bucket mapping;
- ``directive``: the signed rollback directive a device needs before it may install an older version;
- ``decision``: what one device should run (``none | update | rollback``), a pure function;
- ``service``: the operations (publish, promote, rollback, status, refresh) over the models bucket.

Everything lives in the models bucket and is addressed through ``models.runtime.storage_layout``
only; nothing here builds a key by hand.
"""
