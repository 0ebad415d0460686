"""Conversions between decoded `av.VideoFrame`s and numpy images, picked for speed."""

from __future__ import annotations

import cv2
import numpy as np
from av import VideoFrame


def to_video_frame(bgr: np.ndarray) -> VideoFrame:
    """A yuv420p `VideoFrame` of a BGR image (what the VP8/H264 encoders take without swscale)."""
    yuv = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
    return VideoFrame.from_ndarray(yuv, format="yuv420p")


def to_bgr(frame: VideoFrame) -> np.ndarray:
    """BGR pixels of a decoded frame (yuv420p via OpenCV: about half the cost of swscale)."""
    if frame.format.name in ("yuv420p", "yuvj420p") and frame.width % 2 == 0 and frame.height % 2 == 0:
        return np.asarray(cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420), np.uint8)
    return frame.to_ndarray(format="bgr24")


def to_gray(frame: VideoFrame) -> np.ndarray:
    """The luma plane of a decoded frame as an HxW view (no conversion for YUV formats)."""
    if frame.format.name.startswith(("yuv", "nv12", "gray")):
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        return np.asarray(rows[:, : plane.width])
    return frame.to_ndarray(format="gray")
