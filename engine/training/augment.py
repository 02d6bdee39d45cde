"""Online augmentation, batched on the training device.

Random parameters are drawn from a CPU generator (so a run's random stream is the same on every
device and its state fits in a checkpoint); the pixel work is one affine_grid + grid_sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.training.config import AugmentConfig


def _uniform(gen: torch.Generator, n: int, limit: float) -> torch.Tensor:
    return (torch.rand(n, generator=gen) * 2 - 1) * limit


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Augment a batch of images in 0..1 (N x C x H x W float) and return a new tensor."""
    if not cfg.active:
        return x
    n = x.shape[0]
    if cfg.rotation or cfg.shift or cfg.shear or cfg.zoom or cfg.hflip or cfg.vflip:
        x = _affine(x, cfg, gen)
    if cfg.invert > 0:
        flip = (torch.rand(n, generator=gen) < cfg.invert).to(x.device).view(n, 1, 1, 1)
        x = torch.where(flip, 1.0 - x, x)
    if cfg.noise > 0:
        seed = int(torch.randint(0, 2**62, (1,), generator=gen))
        dev_gen = torch.Generator(device=x.device).manual_seed(seed)
        noise = torch.randn(x.shape, generator=dev_gen, device=x.device, dtype=x.dtype)
        x = (x + noise * cfg.noise).clamp_(0.0, 1.0)
    return x


def _affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    angle = _uniform(gen, n, math.radians(cfg.rotation))
    shear = _uniform(gen, n, math.radians(cfg.shear))
    # Zoom > 1 shows more of the image (zoom out) in the sampling grid's terms.
    scale = 1.0 + _uniform(gen, n, cfg.zoom)
    tx = _uniform(gen, n, 2 * cfg.shift)  # grid coordinates span 2 units
    ty = _uniform(gen, n, 2 * cfg.shift)
    sx = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if cfg.hflip else 1.0
    sy = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if cfg.vflip else 1.0
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    theta = torch.zeros(n, 2, 3)
    # rotation @ shear (x-shear) @ scale, with flips applied to the input axes
    theta[:, 0, 0] = cos * scale * sx
    theta[:, 0, 1] = (cos * tan - sin) * scale * sy
    theta[:, 1, 0] = sin * scale * sx
    theta[:, 1, 1] = (sin * tan + cos) * scale * sy
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
