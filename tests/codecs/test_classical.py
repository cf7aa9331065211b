"""The classical codecs (JPEG, JPEG 2000, WebP, AVIF, HEIF): round trips, rate targets and the
knob search, odd sizes, corrupt payloads, spec strings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from innrsic.codecs import make_codec
from innrsic.codecs.classical import CLASSICAL_CODECS
from innrsic.errors import CodecError, CodecSpecError, RateTargetError
from innrsic.metrics import bits_per_pixel, psnr
from innrsic.raster.image import read_image

NAMES = sorted(CLASSICAL_CODECS)
# Default-knob round trips of real aerial images must beat this (they reach 25-35 dB).
PSNR_FLOOR_DB = 22.0


@pytest.fixture(scope="module")
def images(ucm_test_paths: list[Path]) -> list[np.ndarray]:
    return [read_image(p) for p in ucm_test_paths[:2]]


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_default_knob(name: str, images: list[np.ndarray]) -> None:
    codec = make_codec(name)
    for image in images:
        payload = codec.encode(image)
        decoded = codec.decode(payload)
        assert decoded.shape == image.shape
        assert decoded.dtype == np.uint8
        assert psnr(image, decoded) > PSNR_FLOOR_DB


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("target", [0.3, 0.8])
def test_target_bpp_lands_at_or_below_and_close(
    name: str, target: float, images: list[np.ndarray]
) -> None:
    codec = make_codec(f"{name}:bpp={target}")
    for image in images:
        achieved = bits_per_pixel(len(codec.encode(image)), *image.shape[:2])
        assert achieved <= target
        assert achieved >= 0.75 * target, f"{name} only reached {achieved:.3f} of {target}"


@pytest.mark.parametrize("name", ["jpeg", "webp", "avif", "heif"])
def test_integer_knob_search_is_optimal(name: str, images: list[np.ndarray]) -> None:
    """The chosen quality is the highest one at or below the target (up to +2 lookahead)."""
    image = np.ascontiguousarray(images[0][:96, :96])
    max_bytes = 0.5 * image.shape[0] * image.shape[1] / 8
    payload = make_codec(f"{name}:bpp=0.5").encode(image)
    low = int(CLASSICAL_CODECS[name].knob.low)
    sizes = {q: len(make_codec(f"{name}:quality={q}").encode(image)) for q in range(low, 101)}
    best_feasible = max(s for s in sizes.values() if s <= max_bytes)
    assert len(payload) == best_feasible


def test_rate_search_counts_the_overhead_stored_with_the_payload(
    images: list[np.ndarray],
) -> None:
    image = np.ascontiguousarray(images[0][:96, :96])
    max_bytes = 0.5 * 96 * 96 / 8
    sizes = {q: len(make_codec(f"jpeg:quality={q}").encode(image)) for q in range(1, 101)}
    payload = make_codec("jpeg:bpp=0.5").encode(image, overhead=60)
    assert len(payload) == max(s for s in sizes.values() if s + 60 <= max_bytes)
    with pytest.raises(RateTargetError, match=r"with 600 bytes of tile record"):
        make_codec("jpeg:bpp=0.5").encode(image, overhead=600)


def test_unreachable_rate_is_clear(images: list[np.ndarray]) -> None:
    pattern = r"\(0\.01 bpp\) is unreachable.* bytes \([0-9.]+ bpp\)"
    with pytest.raises(RateTargetError, match=pattern):
        make_codec("jpeg:bpp=0.01").encode(images[0])


def test_rate_search_reports_the_knob_it_chose(tmp_path: Path, ucm_test_paths: list[Path]) -> None:
    from innrsic.cli import main
    from innrsic.rsic.coding import compress_file

    codec = make_codec("jpeg:bpp=0.5")
    payload = codec.encode(read_image(ucm_test_paths[0]))
    quality = int(codec.last_choice.removeprefix("quality="))
    assert make_codec(f"jpeg:quality={quality}").encode(read_image(ucm_test_paths[0])) == payload
    tiled = compress_file(ucm_test_paths[0], tmp_path / "t.rsic", make_codec("jpeg2000:bpp=0.3"),
                          tile=128)
    assert tiled.knob is not None and tiled.knob.startswith("ratio=")
    assert make_codec("jpeg:quality=50").last_choice is None
    assert main(["compress", str(ucm_test_paths[0]), "-o", str(tmp_path / "a.rsic"),
                 "--codec", "jpeg:bpp=0.5"]) == 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(250, 256), (17, 9), (1, 1)])
def test_odd_sizes_round_trip(name: str, shape: tuple[int, int], images: list[np.ndarray]) -> None:
    image = np.ascontiguousarray(images[0][: shape[0], : shape[1]])
    codec = make_codec(name)
    assert codec.decode(codec.encode(image)).shape == image.shape


@pytest.mark.parametrize("name", NAMES)
def test_corrupt_payload_is_codec_error(name: str, images: list[np.ndarray]) -> None:
    codec = make_codec(name)
    payload = codec.encode(images[0])
    for broken in (b"", payload[:10], b"\x00" * 64):
        with pytest.raises(CodecError):
            codec.decode(broken)


@pytest.mark.parametrize(
    "spec",
    [
        "jpeg:quality=20",
        "jpeg2000:bpp=0.1",
        "webp:quality=30",
        "avif:quality=40",
        "heif:quality=30",
        "jpeg2000:ratio=48.0",
        "heif:bpp=0.25",
    ],
)
def test_spec_round_trips_through_registry(spec: str) -> None:
    codec = make_codec(spec)
    assert codec.spec == spec
    assert make_codec(codec.spec).spec == spec


def test_default_spec_names_the_knob() -> None:
    assert make_codec("jpeg").spec == "jpeg:quality=75"
    assert make_codec("J2K:ratio=40").spec == "jpeg2000:ratio=40.0"


@pytest.mark.parametrize(
    ("spec", "phrase"),
    [
        ("png:quality=3", "valid codecs: avif, bmshj2018-factorized.*elic.*jpeg2000, mbt2018"),
        ("jpeg:qualiti=3", "valid: quality"),
        ("jpeg:quality=500", "out of range"),
        ("jpeg:quality=abc", "not a valid int"),
        ("jpeg:quality=20,bpp=0.1", "not both"),
        ("jpeg:quality", "key=value"),
        ("jpeg:quality=1,quality=2", "twice"),
        ("", "empty"),
        ("webp:bpp=nan", "NaN"),
    ],
)
def test_bad_specs_are_explained(spec: str, phrase: str) -> None:
    with pytest.raises(CodecSpecError, match=phrase):
        make_codec(spec)


SETTING_SPECS = [
    "jpeg:bpp=0.4,subsampling=444",
    "jpeg:quality=40,subsampling=422,tables=flat",
    "jpeg2000:bpp=0.3,wavelet=53",
    "jpeg2000:bpp=0.3,tile=64,codeblock=16",
    "avif:bpp=0.4,subsampling=444",
    "heif:bpp=0.4,chroma=444",
]


@pytest.mark.parametrize("spec", SETTING_SPECS)
def test_encoder_settings_change_the_payload_and_keep_the_rate(
    spec: str, images: list[np.ndarray]
) -> None:
    codec = make_codec(spec)
    assert make_codec(codec.spec).spec == codec.spec == spec
    default = make_codec(spec.split(",")[0])
    image = images[0]
    payload = codec.encode(image)
    assert payload != default.encode(image)
    decoded = codec.decode(payload, image.shape[:2])
    assert psnr(image, decoded) > 18.0
    if codec.bpp is not None:
        assert bits_per_pixel(len(payload), *image.shape[:2]) <= codec.bpp


def test_default_settings_are_left_out_of_the_spec() -> None:
    assert make_codec("jpeg:quality=20,subsampling=420,tables=annexk").spec == "jpeg:quality=20"
    assert make_codec("jpeg2000:bpp=0.2,wavelet=97,tile=0,codeblock=64").spec == "jpeg2000:bpp=0.2"


@pytest.mark.parametrize(
    ("spec", "phrase"),
    [
        ("jpeg:subsampling=411", "one of 420/422/444"),
        ("jpeg2000:tile=16", "power of two >= 32"),
        ("jpeg2000:tile=100", "power of two >= 32"),
        ("jpeg2000:codeblock=128", "out of range"),
        ("webp:chroma=444", "unknown parameter"),
    ],
)
def test_bad_settings_are_explained(spec: str, phrase: str) -> None:
    with pytest.raises(CodecSpecError, match=phrase):
        make_codec(spec)
