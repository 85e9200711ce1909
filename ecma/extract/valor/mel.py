"""The fusion HTSAT's input as VALOR computes it: ``get_mel`` of LAION-CLAP's training data code (VALOR's
``utils/clap_utils.py`` copies it), a torchaudio ``MelSpectrogram`` (power 2, HTK mel scale without
normalisation, centred reflect-padded frames under a periodic Hann window) and ``AmplitudeToDB`` (10 log10
of the power, floored at 1e-10, no top_db). Not the non-fusion tower's own front end (torchlibrosa's
Slaney-scale filters, which the fusion path skips). Written with torch's operations in torchaudio's order,
so that torchaudio need not be installed; tests compare it with an independent computation.
"""

from __future__ import annotations

import math

import torch


def hz_to_mel(freq: float) -> float:
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def htk_mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """(n_freqs, n_mels) triangular filters: ``torchaudio.functional.melscale_fbanks(..., norm=None,
    mel_scale='htk')``, in float32 as torchaudio builds them."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    f_pts = 700.0 * (10.0 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down, up))


class FusionMel(torch.nn.Module):
    """(B, N) waveforms -> (B, frames, mel_bins) log-mel, frames = 1 + N // hop."""

    def __init__(self, audio_cfg: dict):
        super().__init__()
        self.n_fft = int(audio_cfg["window_size"])
        self.hop = int(audio_cfg["hop_size"])
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer("filters", htk_mel_filterbank(self.n_fft // 2 + 1, float(audio_cfg["fmin"]),
                                                           float(audio_cfg["fmax"]), int(audio_cfg["mel_bins"]),
                                                           int(audio_cfg["sample_rate"])), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(waveforms, n_fft=self.n_fft, hop_length=self.hop, win_length=self.n_fft, window=self.window,
                          center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
        power = spec.abs().pow(2.0)  # (B, freqs, frames)
        mel = torch.matmul(power.transpose(-1, -2), self.filters)  # (B, frames, mels): MelScale, transposed back later
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
