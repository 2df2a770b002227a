"""wav2vec2 audio features at the video frame rate, and their per-clip windows.

MultiTalk resamples wav2vec2's 50 Hz CNN features to 25 fps *before* the feature projection and
the transformer encoder, then keeps every encoder layer. transformers 5 no longer lets a subclass
ask the encoder for its hidden states, so the resampling is a forward hook on the CNN feature
extractor and the states come from the model's own ``output_hidden_states``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

VIDEO_FPS = 25


class AudioFeatureEncoder:
    """wav2vec2 (all encoder layers) at ``fps`` frames per second."""

    def __init__(
        self,
        model: Wav2Vec2Model,
        feature_extractor: Wav2Vec2FeatureExtractor,
        fps: int = VIDEO_FPS,
    ) -> None:
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.fps = fps
        self._target_frames = 0
        model.feature_extractor.register_forward_hook(self._resample_hook)

    def _resample_hook(
        self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor
    ) -> torch.Tensor:
        # output: (batch, channels, 50 Hz frames) -> (batch, channels, fps frames)
        return F.interpolate(output, size=self._target_frames, mode="linear", align_corners=True)

    @torch.no_grad()
    def encode(self, samples: np.ndarray, sample_rate: int = 16_000) -> torch.Tensor:
        """Mono ``samples`` -> ``(int(seconds * fps), layers, hidden)`` float32 features on CPU."""
        self._target_frames = int(samples.size / sample_rate * self.fps)
        if self._target_frames < 1:
            raise ValueError("audio shorter than one video frame")
        values = self.feature_extractor(
            samples, sampling_rate=sample_rate, return_tensors="pt"
        ).input_values
        param = next(self.model.parameters())
        out = self.model(values.to(param.device, param.dtype), output_hidden_states=True)
        return torch.stack(out.hidden_states[1:], dim=2)[0].float().cpu()


def clip_audio_windows(
    features: torch.Tensor, start: int, count: int, window: int = 5, *, mirror_tail: bool = True
) -> torch.Tensor:
    """Windows of ``window`` frames centred on frames ``start .. start + count - 1``.

    Past the end of the audio, MultiTalk appends the audio's last frames reversed before each
    later clip, so the first frame past the end repeats the last one, the next the one before
    it, and so on (``mirror_tail``); the first clip sees no such extension and repeats the last
    frame (``mirror_tail=False``), as the reference does. Window edges clamp at the ends.

    Args:
        features: ``(frames, layers, hidden)``.

    Returns:
        ``(count, window, layers, hidden)``.
    """
    last = features.shape[0] - 1
    centres = torch.arange(start, start + count)
    offsets = torch.arange(window) - window // 2
    index = centres[:, None] + offsets[None, :]
    if mirror_tail:
        index = torch.where(index > last, 2 * last + 1 - index, index)
    return features[index.clamp(0, last)]
