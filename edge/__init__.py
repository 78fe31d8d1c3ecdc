"""The EdgeScribe edge agent: keeps the right signed model installed and transcribes offline.

Modules, in the order a sync runs through them:

* ``config``        — settings from a TOML file and ``EDGESCRIBE_AGENT_*`` environment variables;
* ``client``        — the device protocol over HTTPS (urllib; no boto3 on devices);
* ``download``      — resumable, size-capped, time-bounded download into a partial file;
* ``verification``  — the ordered list of checks an update must pass, each naming the attack it stops;
* ``slots``         — the A/B model slots and the atomic ``current`` pointer;
* ``smoke``         — run a staged model on a bundled clip, in a child process;
* ``updater``       — download → verify → stage → smoke → switch → health, resumable after ``kill -9``;
* ``router``        — cloud when online and healthy, local onnxruntime otherwise;
* ``outbox``        — durable SQLite queue: every local result and correction reaches the cloud once;
* ``agent``/``cli`` — the loop with jittered back-off, and ``edgescribe-agent``.

Devices never import torch or boto3.
"""
