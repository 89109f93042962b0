"""The one image conversion: every supported encoding decodes to the same RGB pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hma_ros.data.images import ImageError, ImageSpec, compressed_to_rgb, image_to_rgb, rgb_to_image_fields

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)


def _pad_rows(pixels: np.ndarray, pad: int) -> tuple[bytes, int]:
    rows = pixels.reshape(pixels.shape[0], -1)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad), 7, np.uint8)], axis=1)
    return padded.tobytes(), padded.shape[1]


@pytest.mark.parametrize("encoding,pixels", [
    ("rgb8", RGB),
    ("bgr8", RGB[:, :, ::-1]),
    ("rgba8", np.concatenate([RGB, np.full((6, 5, 1), 255, np.uint8)], axis=2)),
    ("bgra8", np.concatenate([RGB[:, :, ::-1], np.zeros((6, 5, 1), np.uint8)], axis=2)),
])
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_decode_to_the_same_rgb_with_or_without_row_padding(encoding, pixels, pad):
    data, step = _pad_rows(np.ascontiguousarray(pixels), pad)
    out = image_to_rgb(encoding, 6, 5, step, data)
    np.testing.assert_array_equal(out, RGB)


def test_mono8_is_replicated_to_three_channels():
    gray = RGB[:, :, 0].copy()
    out = image_to_rgb("mono8", 6, 5, 5, gray.tobytes())
    assert out.shape == (6, 5, 3)
    np.testing.assert_array_equal(out[:, :, 1], gray)


@pytest.mark.parametrize("bigendian", [False, True])
def test_16_bit_colour_keeps_the_high_byte(bigendian):
    wide = RGB.astype(np.uint16) * 256 + 17
    data = wide.astype(">u2" if bigendian else "<u2").tobytes()
    out = image_to_rgb("rgb16", 6, 5, 30, data, is_bigendian=bigendian)
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_depth_like_encodings_are_rejected_with_a_reason(encoding):
    with pytest.raises(ImageError, match="depth"):
        image_to_rgb(encoding, 2, 2, 8, bytes(16))


def test_unknown_encoding_lists_the_supported_ones():
    with pytest.raises(ImageError, match="supported: .*bgr8"):
        image_to_rgb("yuv422_yuy2", 2, 2, 4, bytes(8))


def test_step_smaller_than_a_row_and_truncated_data_are_explained():
    with pytest.raises(ImageError, match="step 10 is smaller than one row"):
        image_to_rgb("rgb8", 6, 5, 10, bytes(60))
    with pytest.raises(ImageError, match="truncated"):
        image_to_rgb("rgb8", 6, 5, 15, bytes(50))


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_patterns_demosaic_to_the_right_colour(pattern):
    # a flat orange scene seen through the colour filter array named by the pattern
    colour = {"r": 220, "g": 120, "b": 20}
    h, w = 8, 8
    mosaic = np.zeros((h, w), np.uint8)
    for dy in range(2):
        for dx in range(2):
            mosaic[dy::2, dx::2] = colour[pattern[2 * dy + dx]]
    out = image_to_rgb(f"bayer_{pattern}8", h, w, w, mosaic.tobytes())
    centre = out[2:-2, 2:-2].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(centre, [220, 120, 20], atol=2)


def test_compressed_jpeg_and_png_decode_to_rgb():
    img = np.zeros((16, 16, 3), np.uint8)
    img[:, :, 0] = 200  # red in RGB
    ok, png = cv2.imencode(".png", img[:, :, ::-1])
    assert ok
    np.testing.assert_array_equal(compressed_to_rgb("png", png.tobytes()), img)
    ok, jpg = cv2.imencode(".jpg", img[:, :, ::-1])
    out = compressed_to_rgb("rgb8; jpeg compressed bgr8", jpg.tobytes())
    assert abs(int(out[8, 8, 0]) - 200) < 5 and out[8, 8, 2] < 10
    with pytest.raises(ImageError, match="could not be decoded"):
        compressed_to_rgb("jpeg", b"not a jpeg")


def test_rgb_to_image_fields_round_trips():
    f = rgb_to_image_fields(RGB)
    np.testing.assert_array_equal(image_to_rgb(**f), RGB)


def test_image_spec_center_crops_then_resizes_to_the_model_size():
    wide = np.zeros((48, 64, 3), np.uint8)
    wide[:, :8] = 255  # a white band that the centre crop removes
    out = ImageSpec(size=(16, 16)).prepare(wide)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert out.max() == 0
    squashed = ImageSpec(size=(16, 16), crop="none").prepare(wide)
    assert squashed[:, 0].mean() > 200


def test_filmstrips_split_back_into_model_size_tiles_and_score_against_the_camera():
    from hma_ros.runtime.compare import match_imagined, split_filmstrip

    rng = np.random.default_rng(1)
    tiles = rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    strip = np.concatenate(list(tiles), axis=1).repeat(2, 0).repeat(2, 1)  # display_scale 2
    np.testing.assert_array_equal(split_filmstrip(strip, 4, 8), tiles)
    camera = [(10.0 + 0.1 * i, tiles[min(3, round(i / 5))]) for i in range(16)]  # tile k seen at 10 + 0.5 k
    res = match_imagined([(10.0, strip)], camera, tiles=4)
    assert sorted(res["horizons"]) == [1, 2, 3]
    assert all(v["psnr"] == 60.0 for v in res["horizons"].values())  # a perfect imagination (capped)
    assert res["horizons"][1]["copy_psnr"] < 20
