"""winworkers deploy, upload, delete and status: a template to a CloudFormation
stack by change set, against AWS (the usual credential chain) or an emulator
(--endpoint-url). Needs boto3: pip install 'winworkers[deploy]'.

Nothing changes that was not asked for:

- Before any AWS call every value given is checked against the template's
  parameter constraints and what the resources need of it (whole numbers,
  schedules); the stack name, the bucket names and the template's size too. A
  typo gets a "did you mean". Once the stack's values are read, the values it
  keeps are checked the same way, then the Rules, once, over every value.
- On an update a parameter not given keeps its previous value
  (--reset-to-defaults: takes its default, and each value that changes so is
  named). An instance refresh under way is named and refused
  (--wait-for-refresh waits for it) before anything changes.
- Before the change set, what the stack will point at is looked up (preflight):
  the work queue, the buckets and the worker artifact exist and are in the
  stack's Region, the KMS keys are in it. What cannot work is refused in one
  line; what the deployer may not look at is one line, and it goes on.
  --skip-preflight skips it; winworkers preflight runs it alone, creating nothing.
- The change set is printed first, grouped: remove, replace (with what causes
  it), modify, add, and whether it starts an instance refresh. --dry-run stops
  there and leaves it for review.
- A change set that removes or replaces anything, or starts an instance
  refresh, is executed only when the operator says yes in a terminal, or with
  --yes. Turning the feature off deletes all of it: that needs --yes.
- Then it follows the stack's events, its nested stacks' and the instance
  refresh's progress to the end, and an instance refresh the update started on
  to Successful, Failed, Cancelled or a rollback (--no-wait: not past the
  stack's end). Exit status 0 only when the stack ends as asked and its refresh
  Successful; a rollback (its first failed resource, or the stack's reason), a
  failed change set, a refresh ended otherwise or a --timeout (which stops the
  waiting, not the stack nor the refresh) is one line saying what happened and
  what to run next.

winworkers status --stack-name NAME attaches to an operation under way, and a
refresh under way, and follows them the same way. winworkers delete says what
goes and what stays (log groups with DeletionPolicy Retain), and asks (--yes
without a terminal); it refuses during an instance refresh, as deploy does,
and a stack that does not exist is an error.
winworkers upload puts a nested stack's child into a bucket and prints the
https URL the parent's TemplateURL parameter takes.

The steps live apart, as rain's do: inputs (read, check), preflight (what the
values name), changes (the plan of a change set), confirm (ask or refuse),
execute (the AWS calls), watch (events and refreshes), commands (the CLI).
A deploy's pre-check is one pass, each step once: read (inputs.read_given: the
values given, and the Rules they decide alone), validate (inputs.validate: the
values kept, each required input, the other Rules), fill (the S3 prefix lists), check against the account (the nested
child, the preflight); then one checked template goes on to the change set.
"""

from __future__ import annotations

from typing import Any

from winworkers.deploy.base import INSTALL, Clients, DeployError, DeployResult, Echo
from winworkers.deploy.changes import Plan
from winworkers.deploy.execute import (
    CAPABILITIES,
    DEFAULT_TIMEOUT_MINUTES,
    DONE,
    NO_CHANGES,
    RECREATE,
    delete,
    deploy,
    follow,
    s3_location,
    upload,
)
from winworkers.deploy.inputs import (
    check,
    check_size,
    load_template,
    parse_pairs,
    prefix_lists_to_fill,
    read_parameters_file,
    read_template,
)
from winworkers.deploy.watch import EventStream

__all__ = [
    "CAPABILITIES",
    "DEFAULT_TIMEOUT_MINUTES",
    "DONE",
    "INSTALL",
    "NO_CHANGES",
    "RECREATE",
    "Clients",
    "DeployError",
    "DeployResult",
    "Echo",
    "EventStream",
    "Plan",
    "add_commands",
    "check",
    "check_size",
    "delete",
    "deploy",
    "follow",
    "load_template",
    "parse_pairs",
    "prefix_lists_to_fill",
    "read_parameters_file",
    "read_template",
    "s3_location",
    "upload",
]


def add_commands(commands: Any) -> None:
    """winworkers deploy, upload, delete and status, on the CLI's subparsers."""
    from winworkers.deploy.commands import add_commands as add

    add(commands, __doc__ or "")
