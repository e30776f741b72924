"""Temporally correlated Gaussian noise for sampling action sequences (power spectrum ``1/f^beta``)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InvalidArgumentError


def colored_normal(shape: tuple[int, ...], beta: float, generator: torch.Generator, *, dim: int = -2,
                   device: torch.device | str = "cpu") -> Tensor:
    """Standard-normal noise whose power along ``dim`` falls as ``1/f^beta`` (0: white, 1: pink, 2: red).

    Each entry is marginally ``N(0, 1)``; along ``dim`` neighbours are correlated more the larger
    ``beta`` is, so a sampled action sequence holds its sign for longer (the iCEM sampler, Pinneri
    et al. 2020). Frequencies below ``1/n`` are cut off at ``1/n``. ``beta = 0`` is exactly
    ``torch.randn(shape, generator=generator)``.
    """
    if not beta >= 0:
        raise InvalidArgumentError("beta", f"must be >= 0, got {beta}")
    if beta == 0:
        return torch.randn(shape, generator=generator, device=device)
    dim = dim % len(shape)
    n = shape[dim]
    freqs = torch.fft.rfftfreq(n, device=device)
    scale = freqs.clamp_min(1.0 / n).pow(-beta / 2)
    # Var of one entry of irfft(scale * (a + i b)) with a, b ~ N(0, 1): the DC (and, for even n, the
    # Nyquist) term keeps only its real part, every other frequency contributes twice.
    power = scale.square()
    interior = power[1:-1] if n % 2 == 0 else power[1:]
    variance = (power[0] + 4 * interior.sum() + (power[-1] if n % 2 == 0 else 0.0)) / n**2
    spectrum_shape = list(shape)
    spectrum_shape[dim] = freqs.numel()
    real = torch.randn(spectrum_shape, generator=generator, device=device)
    imag = torch.randn(spectrum_shape, generator=generator, device=device)
    view = [1] * len(shape)
    view[dim] = -1
    spectrum = torch.complex(real, imag) * scale.view(view)
    return torch.fft.irfft(spectrum, n=n, dim=dim) / variance.sqrt()
