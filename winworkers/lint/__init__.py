"""``winworkers lint``: cfn-lint with the package's own rules appended.

The rules (``winworkers.lint.rules``, one module each: E9101, E9102, W9103, W9104,
E9105, E9106) catch what a real AWS account refuses or gets wrong but cfn-lint and
moto accept: gateway endpoint principals, list parameters given to a nested stack
(or SAM application), reserved Lambda concurrency, an Auto Scaling group that does
not wait for the network its instances boot through, and msiexec not awaited by
cfn-init. They are meant for templates nobody here wrote and stay silent where the
template cannot say. A platform team runs them on its own (parent) stack with
``winworkers lint [cfn-lint options] TEMPLATE...``, or with plain cfn-lint:
``cfn-lint --append-rules winworkers.lint.rules TEMPLATE...``.

W9104 (private DNS in a VPC the template does not create) is a design rule for a
stack that must not change a VPC it shares, such as this feature's: it is off
unless enabled with cfn-lint's rule configuration (``DESIGN_RULES``), as the
package's own gates do.

Everything else is cfn-lint's: its options (``--format``, ``--include-checks``,
``--ignore-checks``, ...), its per-resource ``Metadata`` suppressions and its exit
code (a bit mask: 2 errors, 4 warnings, 8 informational; 0 clean).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: The module cfn-lint loads the rules from (``--append-rules`` accepts a module path).
RULES_MODULE = "winworkers.lint.rules"
#: The opt-in design rules, as cfn-lint's rule configuration (``cfnlint.api.ManualArgs(configure_rules=...)``,
#: ``configure_rules:`` in ``.cfnlintrc``).
DESIGN_RULE_CONFIG = {"W9104": {"enabled": True}}
#: The same as cfn-lint options (``=`` keeps argparse from taking the templates that follow as more values).
DESIGN_RULES = tuple(
    f"--configure-rule={rule}:{key}={str(value).lower()}"
    for rule, config in DESIGN_RULE_CONFIG.items()
    for key, value in config.items()
)


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
