"""``make demo`` wall time by stage, from a stopped stack (packages already installed).

``python -m scripts.bench.demo_stages`` stops the developer stack if it runs, then times the
demo's own stages: stack up, product up, upload, submit, render (through every part) and download.
"""

from __future__ import annotations

import time

from scripts import demo
from scripts.bench.results import save
from scripts.local_stack import LocalStack


def main() -> None:
    LocalStack().down()
    started = time.monotonic()
    result = demo.run()
    total = time.monotonic() - started
    timings = result["job"].get("result", {}) or {}
    save(
        "demo_stages",
        {
            "total_s": round(total, 2),
            "stages_s": result["stages_s"],
            "worker_timings_s": timings.get("timings_s", {}),
        },
        "python -m scripts.bench.demo_stages",
    )


if __name__ == "__main__":
    main()
