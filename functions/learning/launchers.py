"""Where a training job runs: a local process (one machine, the default) or a SageMaker training job.

Both run the same entry point, ``python -m models.learning.job --job-id <id> --models-bucket <b>``,
which reads ``spec.json`` from the job folder and reports progress in ``job.json``; the launcher only
starts it and returns a runner description (``local:<pid>`` / ``sagemaker:<training job name>``)
that the trigger stores in the job record. ``runner_ended(runner)`` tells the trigger when one is gone
without having reported (a crashed process, a SageMaker job that failed before the entry point ran),
so such a job does not block retraining forever.

``launcher_from_environment`` picks SageMaker when ``EDGESCRIBE_TRAINING_IMAGE_URI`` is set (infra
sets it with the role, output path, instance type and job-name prefix), else the local process.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from botocore.exceptions import ClientError

from functions.common import aws_clients
from functions.learning.records import TrainingJobSpec
from models.runtime import storage_layout

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

#: The training entry point (written in ``models/learning/job.py``).
TRAINING_MODULE: Final = "models.learning.job"
REPOSITORY_ROOT: Final = Path(__file__).resolve().parents[2]

# Environment variables infra sets on the retraining trigger (``infra/program.py``).
IMAGE_URI_VARIABLE: Final = "EDGESCRIBE_TRAINING_IMAGE_URI"
ROLE_ARN_VARIABLE: Final = "EDGESCRIBE_TRAINING_ROLE_ARN"
OUTPUT_URI_VARIABLE: Final = "EDGESCRIBE_TRAINING_OUTPUT_URI"
INSTANCE_TYPE_VARIABLE: Final = "EDGESCRIBE_TRAINING_INSTANCE_TYPE"
JOB_PREFIX_VARIABLE: Final = "EDGESCRIBE_TRAINING_JOB_PREFIX"

#: SageMaker training job names: ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``.
MAX_TRAINING_JOB_NAME: Final = 63
#: The fine-tune plus the gate take minutes on a GPU; a job still running after this is stuck.
MAX_RUNTIME_SECONDS: Final = 4 * 60 * 60
VOLUME_SIZE_GB: Final = 50
_SAGEMAKER_ENDED: Final = frozenset({"Completed", "Failed", "Stopped"})


class LauncherError(Exception):
    """A training job could not be started; ``str()`` says why."""


class LauncherConfigurationError(LauncherError):
    """The environment names SageMaker but leaves out something it needs."""


class Launcher(Protocol):
    def launch(self, spec: TrainingJobSpec) -> str:
        """Start the job described by ``spec`` (already stored); return the runner description."""
        ...


def training_arguments(spec: TrainingJobSpec) -> list[str]:
    return ["--job-id", spec.job_id, "--models-bucket", spec.models_bucket]


class LocalProcessLauncher:
    """``python -m <module>`` as a detached child process, its output in a log file.

    The process inherits the environment (bucket names, ``AWS_ENDPOINT_URL`` of the local stack)
    and runs from the repository root; it gets its own session, so stopping the caller (a CLI, the
    local stack's scheduler) does not stop training. ``launch`` does not wait; ``wait`` is for the
    CLI and tests.
    """

    def __init__(
        self,
        *,
        module: str = TRAINING_MODULE,
        python: str = sys.executable,
        cwd: Path = REPOSITORY_ROOT,
        log_dir: Path | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self._module = module
        self._python = python
        self._cwd = cwd
        self._log_dir = log_dir
        self._environment = environment
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        #: job id -> the log file of its process.
        self.logs: dict[str, Path] = {}

    def launch(self, spec: TrainingJobSpec) -> str:
        folder = self._log_dir or Path(tempfile.mkdtemp(prefix=f"edgescribe-{spec.job_id}-"))
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / f"{spec.job_id}.log"
        environment = dict(os.environ if self._environment is None else self._environment)
        with log_path.open("ab") as log:
            try:
                process = subprocess.Popen(
                    [self._python, "-m", self._module, *training_arguments(spec)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._cwd,
                    env=environment,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LauncherError(
                    f"cannot start {self._python} -m {self._module}: {exc}"
                ) from exc
        with self._lock:
            self._processes[process.pid] = process
            self.logs[spec.job_id] = log_path
        return f"local:{process.pid}"

    @property
    def runners(self) -> list[str]:
        """Every runner this launcher started, oldest first."""
        with self._lock:
            return [f"local:{pid}" for pid in self._processes]

    def wait(self, runner: str, timeout: float | None = None) -> int:
        """Wait for a process this launcher started; its exit status."""
        process = self._process(_local_pid(runner))
        if process is None:
            raise LauncherError(f"{runner} was not started by this launcher")
        return process.wait(timeout=timeout)

    def ended(self, runner: str) -> str | None:
        if not runner.startswith("local:"):
            return None
        pid = _local_pid(runner)
        process = self._process(pid)
        if process is not None:
            status = process.poll()
            return None if status is None else f"local process {pid} exited with status {status}"
        return None if _process_alive(pid) else f"local process {pid} is no longer running"

    def _process(self, pid: int) -> subprocess.Popen[bytes] | None:
        with self._lock:
            return self._processes.get(pid)


@dataclass(frozen=True)
class SageMakerSettings:
    image_uri: str
    role_arn: str
    output_uri: str
    instance_type: str
    job_prefix: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SageMakerSettings:
        environ = os.environ if environ is None else environ
        values = {}
        for field, variable in (
            ("image_uri", IMAGE_URI_VARIABLE),
            ("role_arn", ROLE_ARN_VARIABLE),
            ("output_uri", OUTPUT_URI_VARIABLE),
            ("instance_type", INSTANCE_TYPE_VARIABLE),
            ("job_prefix", JOB_PREFIX_VARIABLE),
        ):
            value = environ.get(variable, "").strip()
            if not value:
                raise LauncherConfigurationError(
                    f"{variable} is not set; SageMaker training needs it (infra sets it on the "
                    "retraining trigger)"
                )
            values[field] = value
        if not values["output_uri"].startswith("s3://"):
            raise LauncherConfigurationError(
                f"{OUTPUT_URI_VARIABLE}={values['output_uri']!r} is not an s3:// URI"
            )
        return cls(**values)


class SageMakerLauncher:
    """``CreateTrainingJob`` with the project's training image and entry point."""

    def __init__(self, settings: SageMakerSettings, client: SageMakerClient | None = None) -> None:
        self._settings = settings
        self._client = client

    @property
    def client(self) -> SageMakerClient:
        return self._client if self._client is not None else sagemaker_client()

    def training_job_name(self, job_id: str) -> str:
        return training_job_name(self._settings.job_prefix, job_id)

    def launch(self, spec: TrainingJobSpec) -> str:
        settings = self._settings
        name = self.training_job_name(spec.job_id)
        job_folder = f"s3://{spec.models_bucket}/{storage_layout.training_job_prefix(spec.job_id)}/"
        try:
            self.client.create_training_job(
                TrainingJobName=name,
                AlgorithmSpecification={
                    "TrainingImage": settings.image_uri,
                    "TrainingInputMode": "File",
                    "ContainerEntrypoint": ["python", "-m", TRAINING_MODULE],
                    "ContainerArguments": training_arguments(spec),
                },
                HyperParameters={"job-id": spec.job_id, "models-bucket": spec.models_bucket},
                Environment={"MODELS_BUCKET": spec.models_bucket},
                RoleArn=settings.role_arn,
                InputDataConfig=[
                    {
                        "ChannelName": "spec",
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataType": "S3Prefix",
                                "S3Uri": job_folder,
                                "S3DataDistributionType": "FullyReplicated",
                            }
                        },
                    }
                ],
                OutputDataConfig={"S3OutputPath": settings.output_uri},
                ResourceConfig={
                    "InstanceType": settings.instance_type,
                    "InstanceCount": 1,
                    "VolumeSizeInGB": VOLUME_SIZE_GB,
                },
                StoppingCondition={"MaxRuntimeInSeconds": MAX_RUNTIME_SECONDS},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code != "ResourceInUse":
                raise LauncherError(
                    f"SageMaker refused training job {name}: {code}: "
                    f"{exc.response.get('Error', {}).get('Message', '')}"
                ) from exc
            # A retried launch of the same job (names are unique per job id): already started.
        return f"sagemaker:{name}"

    def ended(self, runner: str) -> str | None:
        if not runner.startswith("sagemaker:"):
            return None
        return _sagemaker_job_ended(self.client, runner.removeprefix("sagemaker:"))


def training_job_name(prefix: str, job_id: str) -> str:
    """``<prefix>-<job_id>`` in SageMaker's alphabet, at most 63 characters, still unique.

    The trigger's IAM policy allows only jobs named ``<prefix>-*``, so the prefix is kept whole;
    an overlong name keeps its start and ends in a hash of the whole job id.
    """
    clean_prefix = _sagemaker_safe(prefix)
    if not clean_prefix or len(clean_prefix) > 40:
        raise LauncherConfigurationError(
            f"{JOB_PREFIX_VARIABLE}={prefix!r} must be 1-40 letters, digits or dashes"
        )
    name = f"{clean_prefix}-{_sagemaker_safe(job_id)}".rstrip("-")
    if len(name) <= MAX_TRAINING_JOB_NAME and _sagemaker_safe(job_id) == job_id:
        return name
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:10]
    return f"{name[: MAX_TRAINING_JOB_NAME - 11].rstrip('-')}-{digest}"


def launcher_from_environment(environ: Mapping[str, str] | None = None) -> Launcher:
    environ = os.environ if environ is None else environ
    if environ.get(IMAGE_URI_VARIABLE, "").strip():
        return SageMakerLauncher(SageMakerSettings.from_environment(environ))
    return LocalProcessLauncher()


def runner_ended(runner: str, *, sagemaker: SageMakerClient | None = None) -> str | None:
    """Why ``runner`` has certainly stopped, or ``None`` while it may still run (or is unknown).

    ``local:<pid>`` is checked on this machine (the local stack runs trigger and training on one);
    ``sagemaker:<name>`` asks SageMaker.
    """
    if runner.startswith("local:"):
        pid = _local_pid(runner)
        return None if _process_alive(pid) else f"local process {pid} is no longer running"
    if runner.startswith("sagemaker:"):
        return _sagemaker_job_ended(
            sagemaker or sagemaker_client(), runner.removeprefix("sagemaker:")
        )
    return None


def sagemaker_client() -> SageMakerClient:
    """One client per process (per endpoint and region), like ``functions.common.aws_clients``."""
    client: SageMakerClient = _sagemaker_client(
        aws_clients.endpoint_url(), aws_clients.region_name()
    )
    return client


@cache
def _sagemaker_client(endpoint: str | None, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5)
    return boto3.session.Session().client(
        "sagemaker", endpoint_url=endpoint, region_name=region, config=config
    )


def _sagemaker_job_ended(client: SageMakerClient, name: str) -> str | None:
    try:
        described = client.describe_training_job(TrainingJobName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in ("ValidationException", "404"):
            return f"SageMaker has no training job {name}"
        raise
    status = described["TrainingJobStatus"]
    if status not in _SAGEMAKER_ENDED:
        return None
    reason = described.get("FailureReason")
    return f"SageMaker training job {name} is {status}" + (f": {reason}" if reason else "")


def _sagemaker_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-")


def _local_pid(runner: str) -> int:
    _, _, pid = runner.partition("local:")
    if not runner.startswith("local:") or not pid.isdigit():
        raise LauncherError(f"{runner!r} is not a local runner (local:<pid>)")
    return int(pid)


def _process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
