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


_SEGMENT_FRAMES = 1024
"""50 Hz CNN frames computed at a time (20 s of audio): memory stays flat however long."""


class AudioFeatureEncoder:
    """wav2vec2 (all encoder layers) at ``fps`` frames per second, in bounded memory.

    The CNN feature encoder runs segment by segment: its layers are local (each 50 Hz frame sees
    400 samples), except the GroupNorm of the first layer, which normalises each channel over
    the whole track; its statistics are gathered in a first pass. The result equals one pass
    over the whole track (to float rounding), while a 10-minute track never holds the first
    layer's output at once (512 channels x 1.9 M frames, 3.9 GB at full size).
    """

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
        self._features: torch.Tensor | None = None
        model.feature_extractor.register_forward_hook(self._resample_hook)

    def _resample_hook(
        self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor
    ) -> torch.Tensor:
        # The CNN's output for the whole track, computed by segments beforehand, in place of
        # what the module computed on its stub input; (batch, channels, 50 Hz) -> fps frames.
        features = self._features if self._features is not None else output
        return F.interpolate(features, size=self._target_frames, mode="linear", align_corners=True)

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
        values = values.to(param.device, param.dtype)
        self._features = self._cnn_features(values)
        try:
            # The model runs as always after its CNN, which sees one receptive field only.
            out = self.model(values[:, :_RECEPTIVE_FIELD], output_hidden_states=True)
        finally:
            self._features = None
        return torch.stack(out.hidden_states[1:], dim=2)[0].float().cpu()

    def _cnn_features(self, values: torch.Tensor) -> torch.Tensor:
        """The CNN feature encoder's ``(1, channels, frames)`` output, segment by segment."""
        layers = self.model.feature_extractor.conv_layers
        first = layers[0]
        frames = values.shape[1]
        for layer in layers:
            kernel, stride = layer.conv.kernel_size[0], layer.conv.stride[0]
            frames = (frames - kernel) // stride + 1
        group_norm = isinstance(getattr(first, "layer_norm", None), torch.nn.GroupNorm)
        stats = self._first_layer_stats(values) if group_norm else None
        segments = []
        for start in range(0, frames, _SEGMENT_FRAMES):
            stop = min(start + _SEGMENT_FRAMES, frames)
            piece = values[:, start * _HOP : (stop - 1) * _HOP + _RECEPTIVE_FIELD][:, None]
            if stats is None:
                hidden = first(piece)
            else:
                hidden = first.activation(_group_norm(first, first.conv(piece), *stats))
            for layer in layers[1:]:
                hidden = layer(hidden)
            segments.append(hidden)
        return torch.cat(segments, dim=2)

    def _first_layer_stats(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and variance of the first convolution's output over the whole track."""
        conv = self.model.feature_extractor.conv_layers[0].conv
        kernel, stride = conv.kernel_size[0], conv.stride[0]
        frames = (values.shape[1] - kernel) // stride + 1
        step = _SEGMENT_FRAMES * _HOP // stride
        total = squares = 0.0
        for start in range(0, frames, step):
            stop = min(start + step, frames)
            out = conv(values[:, start * stride : (stop - 1) * stride + kernel][:, None]).double()
            total = total + out.sum(dim=(0, 2))
            squares = squares + out.square().sum(dim=(0, 2))
        mean = total / frames
        return mean, squares / frames - mean.square()


def _group_norm(
    layer: torch.nn.Module, hidden: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor
) -> torch.Tensor:
    """``layer.layer_norm`` (one group per channel) with statistics of the whole track."""
    norm = layer.layer_norm
    scale = (variance + norm.eps).rsqrt()
    normalised = (hidden.double() - mean[None, :, None]) * scale[None, :, None]
    return (normalised.to(hidden.dtype) * norm.weight[None, :, None]) + norm.bias[None, :, None]


_HOP = 320  # samples per 50 Hz frame of wav2vec2's CNN (the product of its strides)
_RECEPTIVE_FIELD = 400  # samples one 50 Hz frame sees


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
