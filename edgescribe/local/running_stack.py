"""The whole batch path on one machine: moto server + provisioned resources + event-source poller.

``run_local_stack()`` is what ``edgescribe local up``, ``edgescribe demo`` and the end-to-end tests
start. While it runs, this process's environment points boto3 at the moto server and names the
stack's resources exactly as infra names them for a Lambda (``ResourceNames.as_environment``), so
the batch handler the poller calls reads the same variables it reads in AWS. The environment is
restored, the poller stopped and the server terminated when the context exits — also on Ctrl-C.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from edgescribe.local.moto_server import MotoServer, run_moto_server
from edgescribe.local.poller import SqsEventSourcePoller
from edgescribe.local.stack import ProvisionedStack, provision_stack
from edgescribe.settings import ResourceNames

BATCH_FUNCTION_NAME = "edgescribe-batch-transcription"


@dataclass(frozen=True)
class LocalStack:
    server: MotoServer
    resources: ProvisionedStack
    poller: SqsEventSourcePoller | None

    @property
    def names(self) -> ResourceNames:
        return self.resources.names

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url


@contextmanager
def run_local_stack(
    *,
    port: int | None = None,
    stack: str = "local",
    poll: bool = True,
    quiet: bool = False,
    batch_size: int = 10,
    wait_seconds: int = 1,
    visibility_timeout: int = 30,
) -> Iterator[LocalStack]:
    """Start moto on ``port`` (free by default), provision ``stack``, poll its queue.

    ``quiet`` silences the handler's JSON logs and EMF metrics (the demo prints its own output);
    ``visibility_timeout`` is how long a failed message stays hidden before its retry.
    """
    names = ResourceNames(stack=stack)
    with run_moto_server(port) as server:
        overrides = {**server.environment(), **names.as_environment()}
        if quiet:
            overrides["POWERTOOLS_METRICS_DISABLED"] = "true"
        with _environment(overrides), ExitStack() as stack_logs:
            resources = provision_stack(server.endpoint_url, names)
            poller = None
            if poll:
                from functions.batch_transcription import SERVICE, handler

                if quiet:
                    handler_log = logging.getLogger(SERVICE)
                    stack_logs.callback(handler_log.setLevel, handler_log.level)
                    handler_log.setLevel(logging.ERROR)
                poller = SqsEventSourcePoller(
                    queue_url=resources.queue_url,
                    queue_arn=resources.queue_arn,
                    handler=handler,
                    endpoint_url=server.endpoint_url,
                    region=resources.region,
                    batch_size=batch_size,
                    wait_seconds=wait_seconds,
                    visibility_timeout=visibility_timeout,
                    function_name=BATCH_FUNCTION_NAME,
                )
                poller.start()
            try:
                yield LocalStack(server=server, resources=resources, poller=poller)
            finally:
                if poller is not None:
                    poller.stop()


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
