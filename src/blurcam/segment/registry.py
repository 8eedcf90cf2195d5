"""Model names -> specs, and :func:`open_segmenter` which builds the right backend."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import ModelError
from .base import Segmenter
from .spec import ModelSpec

__all__ = ["BUNDLED", "bundled_path", "open_segmenter", "resolve_model", "spec_for"]

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


def resolve_model(model: str, frame_size: tuple[int, int] | None) -> str:
    """``auto`` -> ``landscape`` for frames wider than 4:3, else ``selfie``."""
    if model != "auto":
        return model
    if frame_size is None:
        return "landscape"
    w, h = frame_size
    return "landscape" if w * 3 > h * 4 else "selfie"


def spec_for(model: str) -> ModelSpec:
    """A registry name or a file path -> its :class:`ModelSpec`."""
    if model in BUNDLED:
        filename, size, digest = BUNDLED[model]
        return ModelSpec(
            name=model, path=bundled_path(filename), input_size=size, sha256=digest, licence=_APACHE
        )
    path = Path(model).expanduser()
    if path.suffix.lower() not in (".tflite", ".onnx"):
        names = ", ".join(["auto", *BUNDLED])
        raise ModelError(f"unknown model {model!r}: use one of {names}, or a .tflite/.onnx path")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
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
    if spec.path.suffix.lower() == ".onnx":
        from .onnx import OnnxSegmenter

        return OnnxSegmenter(spec, threads=threads, device=device)
    from .litert import LiteRTSegmenter

    return LiteRTSegmenter(spec, threads=threads, device=device)
