"""Wake the fleet on its queue's real backlog (Lambda index.handler), without CloudWatch.

The platform invokes it right after it enqueues (any event: it reads nothing from it), and
an EventBridge schedule every minute (WakeEveryMinute). One GetQueueAttributes reads the
backlog as SQS holds it now: SQS's CloudWatch metrics come once a minute, and only for
an active queue, before CloudWatch's ingestion and an alarm's evaluation (register rows
215 to 217). With nothing visible it stops there: one call, no Auto Scaling call.

Otherwise it needs ceil((visible + in flight) / BACKLOG_PER_WORKER) workers, the group's
own target tracking formula (winworkers.compute, BacklogPolicy), and raises the group's
desired capacity to that, within MaxSize, with SetDesiredCapacity (HonorCooldown false:
no cooldown delays a start from idle). It never lowers it: scale-in stays with the
target tracking policy and the drain. A second call finds the capacity already there and
makes no change. It reads the group again right before it sets, and sets nothing if the
capacity is already there: SetDesiredCapacity has no condition, so a raise by another actor
between that read and the set can still be lowered (register row 217). With a warm pool,
Auto Scaling takes the raised capacity from the pool first (register row 218).
Env: QUEUE_URL, GROUP_NAME, BACKLOG_PER_WORKER.
"""

import json
import math
import os
from typing import Any

import boto3
from botocore.config import Config

RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 3})
VISIBLE = "ApproximateNumberOfMessages"
IN_FLIGHT = "ApproximateNumberOfMessagesNotVisible"


class WakeError(RuntimeError):
    """The group is not there, or the environment does not name it."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    return run(os.environ)


def run(env: Any, clients: Any = None) -> dict[str, Any]:
    """Raise the desired capacity to what the backlog needs; print and return one JSON line.
    ``clients``: sqs, autoscaling (made if None)."""
    name, url = env.get("GROUP_NAME", ""), env.get("QUEUE_URL", "")
    if not name or not url:
        raise WakeError("GROUP_NAME and QUEUE_URL must be set")
    c = clients or {n: boto3.client(n, config=RETRIES) for n in ("sqs", "autoscaling")}
    found = c["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=[VISIBLE, IN_FLIGHT])["Attributes"]
    out: dict[str, Any] = {
        "group": name,
        "visible": int(found.get(VISIBLE, 0)),
        "in_flight": int(found.get(IN_FLIGHT, 0)),
    }
    if out["visible"] == 0:
        out["result"] = "nothing-waiting"  # in-flight work has its workers already
    else:
        out.update(_raise(c["autoscaling"], name, out, max(1, int(env.get("BACKLOG_PER_WORKER") or 1))))
    print(json.dumps(out))
    return out


def _group(auto: Any, name: str) -> tuple[int, int]:
    """The group's desired capacity and MaxSize, read now."""
    groups = auto.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not groups:
        raise WakeError(f"no Auto Scaling group {name}")
    return int(groups[0]["DesiredCapacity"]), int(groups[0]["MaxSize"])


def _raise(auto: Any, name: str, out: dict[str, Any], per_worker: int) -> dict[str, Any]:
    desired, maximum = _group(auto, name)
    needed = math.ceil((out["visible"] + out["in_flight"]) / per_worker)
    target = min(needed, maximum)
    done = {"needed": needed, "desired": desired, "max_size": maximum}
    if target <= desired:
        return {**done, "result": "enough"}
    # SetDesiredCapacity is not conditional: read again right before it, and send nothing if
    # another actor has raised the capacity to the target or beyond meanwhile. This narrows the
    # window in which the wake could lower a raise to one API round trip; it cannot close it.
    desired, maximum = _group(auto, name)
    target = min(needed, maximum)
    if target <= desired:
        return {**done, "desired": desired, "result": "enough"}
    auto.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=target, HonorCooldown=False)
    return {**done, "desired": desired, "result": "raised", "raised_to": target}
