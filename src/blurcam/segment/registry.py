"""Model names -> specs, and :func:`open_segmenter` which builds the right backend."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path

from ..errors import ModelError
from ..settings import SegmentSettings
from .base import Segmenter
from .spec import ModelSpec, sha256_file

__all__ = [
    "BUNDLED",
    "REFERENCE",
    "SegmenterFactory",
    "bundled_path",
    "check_model",
    "open_for",
    "open_segmenter",
    "reference_spec",
    "resolve_model",
    "spec_for",
]

log = logging.getLogger(__name__)

_APACHE = "Apache-2.0 (MediaPipe)"


def bundled_path(filename: str) -> Path:
    """Path of a model file shipped inside the package."""
    return Path(str(resources.files("blurcam.segment") / "models" / filename))


# name -> (filename, input size (w, h), sha256)
BUNDLED: dict[str, tuple[str, tuple[int, int], str]] = {
    "selfie": (
        "selfie_segmentation.tflite",
        (256, 256),
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    ),
    "landscape": (
        "selfie_segmentation_landscape.tflite",
        (256, 144),
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
    ),
}


# Reference models: never shipped (licences unclear or GPL-3), loaded only from a
# path the user gives, as ``name=/path/file.onnx`` or a bare path whose sha256 is
# known. The spec holds what differs (colour order, normalisation, output kind),
# as documented in shared/models/*/SOURCE.txt and checked on the dev portraits.
_SINET_MEAN = (102.890434, 111.25247, 126.91212)
_SINET_STD = (62.93292 * 255.0, 62.82138 * 255.0, 66.355705 * 255.0)
REFERENCE: dict[str, ModelSpec] = {
    "sinet": ModelSpec(
        name="sinet",
        path=Path("SINet_Softmax_simple.onnx"),
        input_size=(320, 320),
        layout="nchw",
        color="bgr",
        scale=1.0,
        mean=_SINET_MEAN,
        std=_SINET_STD,
        output="prob2",
        sha256="17a75acc69747e443717dfaef152ee3c4615f2d81b0269f7c0224c47584af46a",
        licence="unclear (obs-backgroundremoval GPL-3.0 repo; upstream MIT)",
    ),
    "meet": ModelSpec(
        name="meet",
        path=Path("mediapipe.onnx"),
        input_size=(256, 144),
        output="softmax2",
        sha256="7f785cf032261a07af7b845f891cab30da3f0757c7b362310e089e3aa8e8860a",
        licence="unclear (Google Meet model card)",
    ),
    "selfie-onnx": ModelSpec(
        name="selfie-onnx",
        path=Path("selfie_segmentation.onnx"),
        input_size=(256, 256),
        output="prob",
        sha256="1511ab5564cb0ae179cba9bcad6ad931003ccc71656f11fd270967023678c6a5",
        licence="Apache-2.0 (MediaPipe, tf2onnx conversion)",
    ),
    "rvm": ModelSpec(
        name="rvm",
        path=Path("rvm_mobilenetv3_fp32.onnx"),
        input_size=(512, 288),
        layout="nchw",
        output="rvm",
        sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
        licence="GPL-3.0 (Robust Video Matting): never vendored",
    ),
}
_BY_SHA = {spec.sha256: name for name, spec in REFERENCE.items()}


def reference_spec(name: str, path: Path) -> ModelSpec:
    """The spec of reference model ``name`` for the user's file at ``path``.

    A file whose sha256 differs from the known export still loads (it may be
    the user's own export of the same network) but the check is dropped and
    a warning logged.
    """
    if name not in REFERENCE:
        names = ", ".join(REFERENCE)
        raise ModelError(f"unknown reference model {name!r}: use one of {names}")
    _require_file(path)
    spec = REFERENCE[name]
    digest = sha256_file(path)
    if digest != spec.sha256:
        log.warning(
            "%s: not the known %s export (sha256 %s...); using its spec", path, name, digest[:12]
        )
        return replace(spec, path=path, sha256=None)
    return replace(spec, path=path)


def resolve_model(model: str, frame_size: tuple[int, int] | None) -> str:
    """``auto`` -> ``landscape`` for frames wider than 4:3, else ``selfie``."""
    if model != "auto":
        return model
    if frame_size is None:
        return "landscape"
    w, h = frame_size
    return "landscape" if w * 3 > h * 4 else "selfie"


def _user_path(model: str) -> tuple[str | None, Path]:
    """``name=PATH`` (a reference model) or a bare ``PATH`` -> (name or None, path).

    Raises:
        ModelError: neither a bundled nor a reference name, nor a model file name.
    """
    name, eq, rest = model.partition("=")
    if eq and name in REFERENCE:
        return name, Path(rest).expanduser()
    if model in REFERENCE:
        raise ModelError(
            f"{model} is not shipped with blurcam: give its file as {model}=/path/to/"
            f"{REFERENCE[model].path.name}"
        )
    path = Path(model).expanduser()
    if path.suffix.lower() not in (".tflite", ".onnx"):
        names = ", ".join(["auto", *BUNDLED, *(f"{n}=PATH" for n in REFERENCE)])
        raise ModelError(f"unknown model {model!r}: use one of {names}, or a .tflite/.onnx path")
    return None, path


def _require_file(path: Path) -> None:
    if path.is_dir():
        raise ModelError(f"model {path} is a folder, not a model file")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")


def check_model(model: str) -> None:
    """Fail now, and once, when ``model`` names no bundled model and no model file.

    Cheap (no hashing, no loading): for a job that would otherwise fail on
    its first frame, or on every file of a batch.

    Raises:
        ModelError: an unknown name, or a path that is missing or a folder.
    """
    if model == "auto" or model in BUNDLED:
        return
    _require_file(_user_path(model)[1])


def spec_for(model: str) -> ModelSpec:
    """A registry name or a file path -> its :class:`ModelSpec`."""
    if model in BUNDLED:
        filename, size, digest = BUNDLED[model]
        return ModelSpec(
            name=model, path=bundled_path(filename), input_size=size, sha256=digest, licence=_APACHE
        )
    name, path = _user_path(model)
    if name is not None:
        return reference_spec(name, path)
    _require_file(path)
    known = _BY_SHA.get(sha256_file(path)) if path.suffix.lower() == ".onnx" else None
    if known is not None:
        return replace(REFERENCE[known], path=path)
    out = "prob" if path.suffix.lower() == ".tflite" else "auto"
    return ModelSpec(name=path.stem, path=path, input_size=(256, 256), output=out)


def open_segmenter(
    model: str = "auto",
    *,
    frame_size: tuple[int, int] | None = None,
    threads: int = 2,
    device: str = "cpu",
) -> Segmenter:
    """Build the segmenter for ``model`` (name or path), choosing the backend by file type."""
    spec = spec_for(resolve_model(model, frame_size))
    if spec.output == "rvm":
        from .rvm import RvmSegmenter

        return RvmSegmenter(spec, frame_size=frame_size, threads=threads, device=device)
    if spec.path.suffix.lower() == ".onnx":
        from .onnx import OnnxSegmenter

        return OnnxSegmenter(spec, threads=threads, device=device)
    from .litert import LiteRTSegmenter

    return LiteRTSegmenter(spec, threads=threads, device=device)


# (segment settings, frame size) -> a new segmenter; streams take one so that
# tests and runners can decide how (and whether) a model is built
SegmenterFactory = Callable[[SegmentSettings, tuple[int, int]], Segmenter]


def open_for(settings: SegmentSettings, frame_size: tuple[int, int]) -> Segmenter:
    """The segmenter ``settings`` ask for, for frames of ``frame_size``: the default
    :data:`SegmenterFactory`."""
    return open_segmenter(
        settings.model, frame_size=frame_size, threads=settings.threads, device=settings.device
    )
