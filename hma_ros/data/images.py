"""The one image conversion of hma_ros: ROS image payloads -> RGB uint8 numpy, and the
crop/resize to the model's frame size.

Used by the live nodes (from rclpy messages) and by bag2data (from rosbags messages); both pass
the same fields, so what the model sees on the robot is exactly what it saw in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ImageError(ValueError):
    """An image payload that cannot be turned into an RGB frame; the message says why."""


# encoding -> (channels, dtype) for the encodings we decode without demosaicing
_PLAIN = {
    "rgb8": (3, np.uint8),
    "bgr8": (3, np.uint8),
    "rgba8": (4, np.uint8),
    "bgra8": (4, np.uint8),
    "mono8": (1, np.uint8),
    "8uc1": (1, np.uint8),
    "8uc3": (3, np.uint8),
    "rgb16": (3, np.uint16),
    "bgr16": (3, np.uint16),
    "rgba16": (4, np.uint16),
    "bgra16": (4, np.uint16),
    "mono16": (1, np.uint16),
}
# ROS Bayer pattern names -> OpenCV demosaic codes (OpenCV names the pattern by the second row's
# pair; this is the mapping cv_bridge uses).
_BAYER = {
    "bayer_rggb8": "COLOR_BayerBG2RGB",
    "bayer_bggr8": "COLOR_BayerRG2RGB",
    "bayer_gbrg8": "COLOR_BayerGR2RGB",
    "bayer_grbg8": "COLOR_BayerGB2RGB",
}
_REJECTED = {
    "16uc1": "a 16-bit single-channel image is usually depth (millimetres), not a camera view",
    "32fc1": "a float image is usually depth (metres), not a camera view",
    "bayer_rggb16": "16-bit Bayer is not supported",
    "bayer_bggr16": "16-bit Bayer is not supported",
    "bayer_gbrg16": "16-bit Bayer is not supported",
    "bayer_grbg16": "16-bit Bayer is not supported",
}

SUPPORTED_ENCODINGS = tuple(sorted(set(_PLAIN) | set(_BAYER)))


def _cv2():
    import cv2  # lazy: cheap imports for `import hma_ros`

    return cv2


def _as_bytes(data) -> np.ndarray:
    """A flat uint8 view of a message's data field (bytes, array.array, list or ndarray)."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    try:  # rclpy gives array.array('B') which supports the buffer protocol
        return np.frombuffer(memoryview(data), dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_to_rgb(
    encoding: str, height: int, width: int, step: int, data, is_bigendian: int | bool = False
) -> np.ndarray:
    """Decode a sensor_msgs/Image payload to an (H, W, 3) uint8 RGB array (a copy).

    Handles row padding (`step` larger than width * pixel size), 8-bit colour/mono encodings,
    Bayer patterns (demosaiced) and 16-bit colour/mono (scaled to 8 bits). Raises ImageError
    with what is wrong and what to do.
    """
    enc = (encoding or "").strip().lower()
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ImageError(f"image has no pixels: {width}x{height} (encoding {encoding!r})")
    buf = _as_bytes(data)
    if enc in _REJECTED:
        raise ImageError(
            f"unsupported image encoding {encoding!r}: {_REJECTED[enc]}. Point the camera topic at "
            f"an 8-bit colour stream (supported: {', '.join(SUPPORTED_ENCODINGS)})."
        )
    if enc in _BAYER:
        channels, dtype = 1, np.uint8
    elif enc in _PLAIN:
        channels, dtype = _PLAIN[enc]
    else:
        raise ImageError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise ImageError(
            f"image step {step} is smaller than one row ({width} px x {channels} ch x {itemsize} B "
            f"= {row_bytes} B) for {encoding!r} {width}x{height}: the publisher's step is wrong"
        )
    if buf.size < step * (height - 1) + row_bytes:
        raise ImageError(
            f"image data is {buf.size} B but {encoding!r} {width}x{height} with step {step} needs "
            f"{step * (height - 1) + row_bytes} B: truncated or wrong size"
        )
    if buf.size < step * height:  # last row may legally omit its padding; pad to reshape
        buf = np.concatenate([buf, np.zeros(step * height - buf.size, np.uint8)])
    rows = buf[: step * height].reshape(height, step)[:, :row_bytes]
    if itemsize == 2:
        px = rows.copy().view(">u2" if is_bigendian else "<u2").reshape(height, width, channels)
        img = (px >> 8).astype(np.uint8)
    else:
        img = rows.reshape(height, width, channels)

    if enc in _BAYER:
        cv2 = _cv2()
        return cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), getattr(cv2, _BAYER[enc]))
    if channels == 1:
        return np.repeat(img, 3, axis=2)
    if enc.startswith("bgr"):
        return np.ascontiguousarray(img[:, :, 2::-1])
    return np.ascontiguousarray(img[:, :, :3])


def compressed_to_rgb(fmt: str, data) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg/png) payload to (H, W, 3) uint8 RGB."""
    cv2 = _cv2()
    f = (fmt or "").lower()
    if "compresseddepth" in f:
        raise ImageError(f"compressed depth images ({fmt!r}) are not camera views; use the colour topic")
    arr = _as_bytes(data)
    if arr.size == 0:
        raise ImageError(f"compressed image ({fmt!r}) has no data")
    bgr = cv2.imdecode(arr, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"compressed image ({fmt!r}, {arr.size} B) could not be decoded as jpeg/png")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def rgb_to_image_fields(rgb: np.ndarray) -> dict:
    """The fields of an rgb8 sensor_msgs/Image for an (H, W, 3) uint8 array."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageError(f"expected an (H, W, 3) uint8 array, got shape {rgb.shape}")
    h, w, _ = rgb.shape
    return {"encoding": "rgb8", "height": h, "width": w, "step": 3 * w, "is_bigendian": 0,
            "data": rgb.tobytes()}


@dataclass(frozen=True)
class ImageSpec:
    """How an embodiment's camera frames become model frames."""

    size: tuple[int, int] = (64, 64)  # (height, width) of model frames
    crop: str = "center"  # "center": largest centred box of the target aspect; "none": squash
    flip_vertical: bool = False

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """Crop and resize an RGB frame to the model size (uint8, (h, w, 3))."""
        img = rgb
        if self.flip_vertical:
            img = img[::-1]
        th, tw = self.size
        h, w = img.shape[:2]
        if self.crop == "center":
            target = tw / th
            if w / h > target:  # too wide
                nw = max(1, round(h * target))
                x0 = (w - nw) // 2
                img = img[:, x0 : x0 + nw]
            elif w / h < target:
                nh = max(1, round(w / target))
                y0 = (h - nh) // 2
                img = img[y0 : y0 + nh]
        if img.shape[0] == th and img.shape[1] == tw:
            return np.ascontiguousarray(img, dtype=np.uint8)
        cv2 = _cv2()
        interp = cv2.INTER_AREA if img.shape[0] >= th else cv2.INTER_LINEAR
        return cv2.resize(np.ascontiguousarray(img), (tw, th), interpolation=interp)


def write_video(frames, path, fps: float = 2.0):
    """Frames (N, H, W, 3) uint8 to a looping GIF, or an MP4 when the path ends in .mp4; the
    folder is made. One writer for every GIF the project makes: imageio's pillow GIF writer
    takes the frame duration in milliseconds (`duration=0.5` meant 0.5 ms: a GIF that plays as
    fast as the viewer allows). Identical consecutive frames are merged by the GIF encoder, their
    durations added, so the clip's length stays N / fps."""
    from pathlib import Path

    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp4":
        imageio.mimsave(path, list(frames), fps=fps)
    else:
        imageio.mimsave(path, list(frames), duration=1000.0 / fps, loop=0)
    return path

