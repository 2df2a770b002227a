from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modal_service.multitalk.audio_encoder import clip_audio_windows
from modal_service.multitalk.renderer import Renderer


def test_features_are_25_fps_with_every_encoder_layer(tiny: Renderer) -> None:
    encoder = tiny.audio_encoder
    samples = np.random.default_rng(0).standard_normal(int(16_000 * 2.2)).astype(np.float32) * 0.1
    features = encoder.encode(samples)
    config = encoder.model.config
    assert features.shape == (55, config.num_hidden_layers, config.hidden_size)

    # The same computation by hand: CNN -> resample to 25 fps -> projection -> each encoder layer.
    model = encoder.model
    values = encoder.feature_extractor(
        samples, sampling_rate=16_000, return_tensors="pt"
    ).input_values
    with torch.no_grad():
        extracted = values[:, None]
        for conv in model.feature_extractor.conv_layers:
            extracted = conv(extracted)
        extracted = F.interpolate(extracted, size=55, mode="linear", align_corners=True)
        hidden, _ = model.feature_projection(extracted.transpose(1, 2))
        hidden = model.encoder.layer_norm(hidden + model.encoder.pos_conv_embed(hidden))
        for index, layer in enumerate(model.encoder.layers):
            out = layer(hidden)
            hidden = out[0] if isinstance(out, tuple) else out
            torch.testing.assert_close(features[:, index], hidden[0], atol=1e-5, rtol=1e-5)


def test_clip_windows_centre_clamp_and_mirror() -> None:
    features = torch.arange(10, dtype=torch.float32)[:, None, None]  # frame i holds value i
    windows = clip_audio_windows(features, start=0, count=3)
    assert windows[:, :, 0, 0].tolist() == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 4]]
    tail = clip_audio_windows(features, start=8, count=4)  # frames 8..11: 10 and 11 are 9 and 8
    assert tail[:, 2, 0, 0].tolist() == [8, 9, 9, 8]
    assert tail.shape == (4, 5, 1, 1)
    first_clip = clip_audio_windows(features, start=8, count=4, mirror_tail=False)
    assert first_clip[:, 2, 0, 0].tolist() == [8, 9, 9, 9]


@pytest.mark.parametrize(("length", "start"), [(10, 4), (30, 24), (57, 56), (100, 91)])
def test_later_clips_see_the_audio_as_the_reference_extends_it(length: int, start: int) -> None:
    """MultiTalk, before a clip that runs past the audio: append the last ``end - len + 3``
    frames reversed, then take windows clamped to the extended length."""
    features = torch.randn(length, 2, 3)
    count = 33
    end = start + count
    extended = features
    if end >= length:
        miss = end - length + 3
        extended = torch.cat([features, torch.flip(features[-miss:], dims=[0])])
    centres = torch.arange(start, end)[:, None] + (torch.arange(5) - 2)[None, :]
    reference = extended[centres.clamp(0, extended.shape[0] - 1)]
    torch.testing.assert_close(clip_audio_windows(features, start, count), reference)


@pytest.mark.parametrize("seconds", [1.0, 45.3])  # within one 20 s segment, and across three
def test_the_cnn_by_segments_equals_one_pass_over_the_whole_track(
    tiny: Renderer, seconds: float
) -> None:
    encoder = tiny.audio_encoder
    rng = np.random.default_rng(1)
    samples = (rng.standard_normal(int(16_000 * seconds) + 37) * 0.1).astype(np.float32)
    values = encoder.feature_extractor(samples, sampling_rate=16_000, return_tensors="pt")
    cnn = encoder.model.feature_extractor
    whole = type(cnn).forward(cnn, values.input_values)  # the module's own pass, no hook
    by_segments = encoder._cnn_features(values.input_values)
    # The first layer's GroupNorm statistics come from the whole track in both.
    torch.testing.assert_close(by_segments, whole, atol=1e-5, rtol=1e-5)
    assert encoder.encode(samples).shape[0] == int(len(samples) / 16_000 * 25)
