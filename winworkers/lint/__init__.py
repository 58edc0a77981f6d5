"""``winworkers lint``: cfn-lint with the package's own rules appended.

The rules (``winworkers.lint.rules``, one module each, ids E9101-E9106 and W9103)
catch what a real AWS account refuses or gets wrong but cfn-lint and moto accept:
gateway endpoint principals, list parameters given to a nested stack, reserved
Lambda concurrency, private DNS in a VPC the template does not own, an Auto
Scaling group that does not wait for its network, and msiexec not awaited by
cfn-init. A platform team runs them on its own (parent) stack with
``winworkers lint [cfn-lint options] TEMPLATE...``, or with plain cfn-lint:
``cfn-lint --append-rules winworkers.lint.rules TEMPLATE...``.

Everything else is cfn-lint's: its options (``--format``, ``--include-checks``,
``--ignore-checks``, ...), its per-resource ``Metadata`` suppressions and its exit
code (a bit mask: 2 errors, 4 warnings, 8 informational; 0 clean).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: The module cfn-lint loads the rules from (``--append-rules`` accepts a module path).
RULES_MODULE = "winworkers.lint.rules"


def main(argv: Sequence[str]) -> int:
    """Run cfn-lint on ``argv`` (its options and templates) with the package's
    rules appended; return cfn-lint's exit code."""
    try:
        # cfn-lint is an optional dependency (winworkers[lint]); import it only here
        # so that `import winworkers` stays fast and light.
        from cfnlint.runner import main as cfn_lint
    except ImportError:
        print("winworkers lint needs cfn-lint: pip install 'winworkers[lint]'", file=sys.stderr)
        return 1
    saved = sys.argv
    # `=` keeps argparse from taking the templates that follow as more rule modules.
    sys.argv = ["winworkers lint", f"--append-rules={RULES_MODULE}", *argv]
    try:
        cfn_lint()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        sys.argv = saved
    return 0
