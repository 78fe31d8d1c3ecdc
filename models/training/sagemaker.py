"""SageMaker training entry point: SageMaker's container conventions -> ``models.training.train``.

    python -m models.training.sagemaker [train] [--sm-root /opt/ml] [--<hyperparameter> VALUE ...]

(a bring-your-own container sets ``ENTRYPOINT ["python", "-m", "models.training.sagemaker"]``;
SageMaker then runs it with the argument ``train``, which is accepted and ignored.)

What maps to what (``SM_ROOT`` / ``--sm-root`` replace ``/opt/ml``, for tests and local runs):

- ``/opt/ml/input/config/hyperparameters.json``: every value is a *string* there (the Python SDK
  even JSON-quotes strings: ``"\\"edge\\""``); both forms are parsed into the types
  ``train.py`` expects. ``max_steps`` and ``max-steps`` both work; ``sagemaker_*`` keys (the SDK's
  own) are ignored; an unknown key is an error (a typo must not silently train the default).
  ``--key value`` pairs on the command line (script mode) override the file.
- Channels (``SM_CHANNEL_<NAME>`` or ``/opt/ml/input/data/<name>``): by default every ``*.jsonl``
  manifest in every channel except ``noise`` is training data (``manifests`` = comma-separated
  ``channel/file`` picks some); channel ``noise`` holds ``noise.jsonl`` for augmentation. Name
  the synthetic channel ``synth``: train.py weights real speech ``real-weight`` times against
  manifests whose path contains "synth".
- ``/opt/ml/checkpoints`` is train.py's ``--out``: SageMaker syncs it to S3 and restores it when
  a spot instance is replaced, and train.py resumes from ``last.pt`` in it.
- ``/opt/ml/model`` (``SM_MODEL_DIR``) receives ``final.pt`` + ``train.log``; SageMaker uploads it
  as ``model.tar.gz``. ``/opt/ml/output/failure`` receives the reason when training fails (the
  console shows it as the job's failure reason).
- ``SM_NUM_GPUS`` / ``SM_HOSTS`` / ``SM_CURRENT_HOST`` (or ``resourceconfig.json``): one process
  per GPU (one per host on CPU), launched with ``torchrun`` whenever the job has more than one
  process in total; the first host is the rendezvous master. On CPU, ``threads`` defaults to
  the host's cores per process (a SageMaker instance is not shared, unlike the dev box).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_ROOT: Final = Path("/opt/ml")
DEFAULT_MASTER_PORT: Final = 29500
NOISE_CHANNEL: Final = "noise"

#: hyperparameter -> type, passed to ``models.training.train`` as ``--<name> <value>``
TRAIN_HYPERPARAMETERS: Final[dict[str, type]] = {
    "config": str,
    "minutes": float,
    "max-steps": int,
    "lr": float,
    "warmup": int,
    "batch-seconds": float,
    "max-items": int,
    "threads": int,
    "seed": int,
    "checkpoint-every": int,
    "validate-every": int,
    "real-weight": int,
    "valid-count": int,
}
#: hyperparameters this entry point consumes itself
LAUNCH_HYPERPARAMETERS: Final[dict[str, type]] = {
    "manifests": str,
    "noise-manifest": str,
    "processes-per-host": int,
    "master-port": int,
    "cache-dir": str,
}


class SageMakerConfigError(ValueError):
    """The job's configuration (hyperparameters, channels, hosts) cannot be used; says why."""


Scalar = str | int | float


@dataclass(frozen=True)
class SageMakerJob:
    """Everything the container was told, in one place."""

    root: Path
    hyperparameters: dict[str, Scalar]
    channels: dict[str, Path]
    model_dir: Path
    checkpoint_dir: Path
    failure_file: Path
    hosts: list[str]
    current_host: str
    num_gpus: int
    num_cpus: int

    @property
    def host_index(self) -> int:
        return self.hosts.index(self.current_host)


def normalize_key(key: str) -> str:
    return key.strip().lower().replace("_", "-")


def _unquote(raw: object) -> object:
    """SageMaker's strings, possibly JSON-encoded once more by the Python SDK, to plain values."""
    if not isinstance(raw, str):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else raw


def convert(key: str, raw: object, kind: type) -> Scalar:
    """One hyperparameter to ``kind``; the error names the key and the value."""
    value = _unquote(raw)
    try:
        if isinstance(value, bool):
            raise ValueError("booleans are not accepted")
        if kind is int:
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError("not a whole number")
                return int(value)
            return int(str(value))
        if kind is float:
            number = float(str(value))
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError("not a finite number")
            return number
        return str(value)
    except ValueError as exc:
        raise SageMakerConfigError(
            f"hyperparameter {key}={raw!r} must be {'an integer' if kind is int else 'a number'}"
            f" ({exc})"
        ) from exc


def parse_hyperparameters(raw: Mapping[str, object]) -> dict[str, Scalar]:
    known = {**TRAIN_HYPERPARAMETERS, **LAUNCH_HYPERPARAMETERS}
    parsed: dict[str, Scalar] = {}
    for key, value in raw.items():
        name = normalize_key(key)
        if name.startswith("sagemaker-"):
            continue
        if name not in known:
            raise SageMakerConfigError(
                f"unknown hyperparameter {key!r}; known: {', '.join(sorted(known))}"
            )
        parsed[name] = convert(key, value, known[name])
    return parsed


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SageMakerConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise SageMakerConfigError(f"{path}: not valid JSON: {exc}") from exc


def _cli_pairs(extra: Sequence[str]) -> dict[str, str]:
    """Script mode passes hyperparameters as ``--key value``; collect them."""
    pairs: dict[str, str] = {}
    items = list(extra)
    while items:
        flag = items.pop(0)
        if not flag.startswith("--") or not items:
            raise SageMakerConfigError(f"expected '--name value' pairs, got {flag!r}")
        key, _, inline = flag[2:].partition("=")
        pairs[key] = inline if inline else items.pop(0)
    return pairs


def read_job(root: Path, env: Mapping[str, str], cli: Sequence[str] = ()) -> SageMakerJob:
    config_dir = root / "input" / "config"
    raw: dict[str, object] = {}
    hp_file = config_dir / "hyperparameters.json"
    if hp_file.exists():
        loaded = _read_json(hp_file)
        if not isinstance(loaded, dict):
            raise SageMakerConfigError(f"{hp_file}: expected a JSON object")
        raw.update(loaded)
    raw.update(_cli_pairs(cli))
    hyperparameters = parse_hyperparameters(raw)

    channels = {
        key.removeprefix("SM_CHANNEL_").lower(): Path(value)
        for key, value in env.items()
        if key.startswith("SM_CHANNEL_")
    }
    data_dir = root / "input" / "data"
    if not channels and data_dir.is_dir():
        channels = {p.name: p for p in sorted(data_dir.iterdir()) if p.is_dir()}

    resources: dict[str, object] = {}
    resource_file = config_dir / "resourceconfig.json"
    if resource_file.exists():
        loaded = _read_json(resource_file)
        resources = loaded if isinstance(loaded, dict) else {}
    hosts_raw: object = resources.get("hosts", ["algo-1"])
    if env.get("SM_HOSTS"):
        try:
            hosts_raw = json.loads(env["SM_HOSTS"])
        except ValueError as exc:
            raise SageMakerConfigError(f"SM_HOSTS={env['SM_HOSTS']!r} is not JSON") from exc
    if not isinstance(hosts_raw, list) or not hosts_raw:
        raise SageMakerConfigError(f"hosts must be a non-empty list, got {hosts_raw!r}")
    hosts = [str(h) for h in hosts_raw]
    current = env.get("SM_CURRENT_HOST") or str(resources.get("current_host", hosts[0]))
    if current not in hosts:
        raise SageMakerConfigError(f"current host {current!r} is not among the hosts {hosts}")
    return SageMakerJob(
        root=root,
        hyperparameters=hyperparameters,
        channels=channels,
        model_dir=Path(env.get("SM_MODEL_DIR") or root / "model"),
        checkpoint_dir=root / "checkpoints",
        failure_file=root / "output" / "failure",
        hosts=hosts,
        current_host=current,
        num_gpus=int(convert("SM_NUM_GPUS", env.get("SM_NUM_GPUS", "0"), int)),
        num_cpus=int(convert("SM_NUM_CPUS", env.get("SM_NUM_CPUS", str(os.cpu_count() or 1)), int)),
    )


def training_manifests(job: SageMakerJob) -> list[Path]:
    picked = job.hyperparameters.get("manifests")
    if picked:
        manifests = []
        for item in str(picked).split(","):
            channel, _, name = item.strip().partition("/")
            if channel not in job.channels or not name:
                raise SageMakerConfigError(
                    f"manifests entry {item!r} must be <channel>/<file> with a channel among "
                    f"{sorted(job.channels)}"
                )
            manifests.append(job.channels[channel] / name)
    else:
        manifests = [
            path
            for name, folder in sorted(job.channels.items())
            if name != NOISE_CHANNEL
            for path in sorted(folder.glob("*.jsonl"))
        ]
    missing = [str(m) for m in manifests if not m.is_file()]
    if missing:
        raise SageMakerConfigError(f"training manifests not found: {', '.join(missing)}")
    if not manifests:
        raise SageMakerConfigError(
            f"no training manifest (*.jsonl) in the channels {sorted(job.channels)}"
        )
    return manifests


def processes_per_host(job: SageMakerJob) -> int:
    explicit = job.hyperparameters.get("processes-per-host")
    count = int(explicit) if explicit is not None else max(1, job.num_gpus)
    if count < 1:
        raise SageMakerConfigError(f"processes-per-host must be at least 1, got {count}")
    return count


def train_arguments(job: SageMakerJob) -> list[str]:
    """``models.training.train``'s command line for this job."""
    hp = job.hyperparameters
    nproc = processes_per_host(job)
    args = ["--out", str(job.checkpoint_dir)]
    for manifest in training_manifests(job):
        args += ["--manifest", str(manifest)]
    if "noise-manifest" in hp:
        channel, _, name = str(hp["noise-manifest"]).partition("/")
        if channel not in job.channels:
            raise SageMakerConfigError(f"noise-manifest channel {channel!r} does not exist")
        args += ["--noise-manifest", str(job.channels[channel] / name)]
    else:  # absent channel -> a path that does not exist -> generated noises only
        noise_dir = job.channels.get(NOISE_CHANNEL, job.root / "input" / "data" / NOISE_CHANNEL)
        args += ["--noise-manifest", str(noise_dir / "noise.jsonl")]
    args += ["--cache-dir", str(hp.get("cache-dir", job.root / "cache"))]
    args += ["--device", "cuda" if job.num_gpus > 0 else "cpu"]
    if "threads" not in hp:
        per_process = job.num_cpus // nproc if job.num_gpus == 0 else 1
        args += ["--threads", str(max(1, per_process))]
    for name in TRAIN_HYPERPARAMETERS:
        if name in hp:
            args += [f"--{name}", str(hp[name])]
    return args


def launch_command(job: SageMakerJob, train_args: Sequence[str]) -> list[str] | None:
    """The torchrun command for a multi-process job; None when one process runs in-process."""
    nproc = processes_per_host(job)
    if len(job.hosts) == 1 and nproc == 1:
        return None
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
    if len(job.hosts) == 1:
        command.append("--standalone")
    else:
        port = job.hyperparameters.get("master-port", DEFAULT_MASTER_PORT)
        command += [
            f"--nnodes={len(job.hosts)}",
            f"--node_rank={job.host_index}",
            f"--master_addr={job.hosts[0]}",
            f"--master_port={port}",
        ]
    return [*command, "-m", "models.training.train", *train_args]


def publish_model(job: SageMakerJob) -> bool:
    """Copy ``final.pt`` + ``train.log`` to the model dir (only the host that wrote them has them)."""
    final = job.checkpoint_dir / "final.pt"
    if not final.exists():
        return False
    job.model_dir.mkdir(parents=True, exist_ok=True)
    for name in ("final.pt", "train.log"):
        source = job.checkpoint_dir / name
        if source.exists():
            shutil.copy2(source, job.model_dir / name)
    return True


def run_job(job: SageMakerJob) -> None:
    train_args = train_arguments(job)
    command = launch_command(job, train_args)
    job.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    if command is None:
        from models.training import train

        train.main(train_args)
    else:
        completed = subprocess.run(command, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"torchrun exited with status {completed.returncode}")
    if job.host_index == 0 and not publish_model(job):
        raise RuntimeError(f"training ended without {job.checkpoint_dir / 'final.pt'}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sm-root",
        type=Path,
        default=Path(os.environ.get("SM_ROOT", str(DEFAULT_ROOT))),
        help="SageMaker's /opt/ml (default: $SM_ROOT or /opt/ml)",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # what SageMaker appends to a container's entry point
        argv = argv[1:]
    args, extra = parser.parse_known_args(argv)
    failure = args.sm_root / "output" / "failure"
    try:
        run_job(read_job(args.sm_root, os.environ, extra))
    except Exception as exc:
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
        raise


if __name__ == "__main__":
    main()
