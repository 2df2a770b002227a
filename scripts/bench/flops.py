"""FLOPs per clip per sampling mode of the 14B preset (480p, 81 frames), counted on meta tensors.

``python -m scripts.bench.flops`` — no weights and no GPU needed: the model is built on the meta
device and torch's FLOP counter follows the real forward.
"""

from __future__ import annotations

from modal_service.multitalk.flops import MODES, clip_flops
from scripts.bench.results import save


def main() -> None:
    figures: dict[str, dict[str, float]] = {}
    for speakers in (1, 2):
        for mode in MODES:
            result = clip_flops(mode, speakers=speakers)
            figures[f"{mode}/{speakers}_speaker"] = {
                "forward_tflops": round(result.forward_flops / 1e12, 1),
                "passes": result.passes_per_step * result.steps,
                "clip_pflops": round(result.clip_flops / 1e15, 1),
                "h100_lower_bound_s": round(result.lower_bound_s, 1),
            }
    save("flops", figures, "python -m scripts.bench.flops")


if __name__ == "__main__":
    main()
