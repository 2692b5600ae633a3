"""What a result depends on besides its spec: library versions, device, threads, code version, time."""
from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

LIBRARIES = ("torch", "torchvision", "timm", "torchattacks", "numpy", "scikit-learn", "grad-cam")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_model() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else what the platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_capability() -> str:
    """The vector instruction set PyTorch's CPU kernels dispatch to (e.g. AVX2, AVX512): machines that differ in it
    compute the same spec with other kernels, so their numbers can differ in the last bits (and flip a borderline
    example), as the thread count does."""
    return torch.backends.cpu.get_cpu_capability()


def device_description(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{cpu_model()} ({cpu_capability()}, {torch.get_num_threads()} threads)"


def code_version() -> str:
    """The git commit of the checkout the library runs from (with '+dirty' for local changes), if any."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+dirty" if dirty else "")) if commit else "unknown"


def determinism_flags() -> dict:
    """The global switches that decide whether a rerun reproduces a result bit for bit (cuDNN autotuning and TF32
    trade that for speed; they are off unless a user turns them on)."""
    return {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "float32_matmul_precision": torch.get_float32_matmul_precision()}


def collect_provenance(device: torch.device | str, elapsed_s: float) -> dict:
    return {
        "versions": library_versions(), "device": device_description(device), "code": code_version(),
        "elapsed_s": round(elapsed_s, 3), "host": platform.node(),
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
