"""Sources and sinks: images, image folders, video files (one reader, one writer); atomic output."""

from __future__ import annotations

from .atomic import atomic_output, check_output_path, remove_leftovers
from .image import IMAGE_EXTS, VIDEO_EXTS, is_image_path, list_images, read_image, write_image
from .video import VideoInfo, VideoReader, VideoWriter, probe_video, transcode

__all__ = [
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "atomic_output",
    "check_output_path",
    "is_image_path",
    "list_images",
    "probe_video",
    "read_image",
    "remove_leftovers",
    "transcode",
    "write_image",
]
