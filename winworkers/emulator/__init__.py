"""A local AWS to deploy to: moto's server (pip install 'winworkers[emulator]'),
with the gaps winworkers' templates fall into filled in the way CloudFormation behaves.

    with local_aws() as endpoint_url:   # http://127.0.0.1:<free port>
        ...  # boto3 clients with endpoint_url=..., any credentials, any region

winworkers emulator [--port N] runs the same thing in the foreground and
prints the endpoint and the environment to use with it. The tests deploy through
exactly this, so what the README shows is what they check.

What is patched in moto 5.2.5 (in-process, for as long as the context is open):

1. Fn::Cidr is evaluated (moto leaves it as is, so the Fn::Select around
   it fails): the first count blocks of /(32 - cidrBits) in ipBlock.
2. {"Ref": "AWS::NoValue"} inside a list is removed, as CloudFormation removes
   it (moto keeps a None item).
3. Fn::GetAtt [<security group>, VpcId] returns the group's VPC (moto knows
   only GroupId).
4. Resource events: moto records only the stack's own events; the patched
   emulator also records CREATE_IN_PROGRESS/CREATE_COMPLETE (or
   CREATE_FAILED with the error), UPDATE_* and DELETE_* for each
   resource, so winworkers deploy has something to stream.
5. Deleting a stack deletes its route tables, VPC endpoints, subnet route-table
   associations and flow logs (moto's CloudFormation silently leaves them, so the VPC's
   deletion then fails with DependencyViolation, or its flow log outlives it).
6. A failed create rolls back: moto raises from ExecuteChangeSet and leaves
   the stack in progress; CloudFormation accepts the execution, then records the
   resource's CREATE_FAILED, deletes what was created and leaves the stack in
   ROLLBACK_COMPLETE, which the patched emulator now does too.

7. A resource whose Condition is false is not in the stack, on create and on
   update: moto skips creating it but still lists it (CREATE_COMPLETE, empty
   id), and on an update that turns a condition false it keeps the resource.
   CloudFormation deletes it, so turning the switch off on an update removes
   the feature here too.

Instance refreshes and the refresh custom resource (see the section at the end):

8. StartInstanceRefresh, DescribeInstanceRefreshes and CancelInstanceRefresh exist
   (moto has none of them), with per-group state: one active refresh per group
   (a second start is InstanceRefreshInProgress; a cancel without one is
   ActiveInstanceRefreshNotFound), newest first, each with its Preferences and
   DesiredConfiguration as requested. A start that asks for SkipMatching or a
   DesiredConfiguration while the group's launch template ImageId is
   ``resolve:ssm:`` is refused (ValidationError), as the Auto Scaling user guide
   says AWS refuses it. What it does NOT model: no instance is replaced, a
   refresh never progresses (InProgress, 0%, until cancelled), and a cancel is
   Cancelled at once (AWS passes through Cancelling).
9. A stack is ``<type>_IN_PROGRESS`` while its change set runs (moto keeps the old
   status), so code called during the update can see it. An update also updates
   each resource whose properties, once resolved, changed (moto updates only the
   resources whose JSON or named parameters changed): a new launch template
   version reaches the group's ``LatestVersionNumber`` and whatever names it.
   A failed update rolls back as in AWS: ExecuteChangeSet is accepted, the
   failing resource gets UPDATE_FAILED with its reason, then the previous
   template and parameters are applied again while the stack is
   UPDATE_ROLLBACK_IN_PROGRESS (so a custom resource sees its rollback Update),
   and the stack ends UPDATE_ROLLBACK_COMPLETE. NOT modelled: what moto cannot
   update back is left as it is, and a failure during the rollback still ends
   UPDATE_ROLLBACK_COMPLETE (AWS: UPDATE_ROLLBACK_FAILED).
10. ``Custom::*`` resources whose ServiceToken is a function of the stack are
   served in-process (moto would run the Lambda in Docker, and only on create):
   the function's inline ZipFile source is loaded as a module and its
   ``on_stack_event(event, environment, clients)`` runs with boto3 clients
   pointed at the emulator (made once per emulator and Region, and kept, as a
   warm Lambda environment keeps its own), for Create, Update (with OldResourceProperties)
   and Delete. Its response, PUT to a ResponseURL on the emulator, is honoured:
   SUCCESS keeps its PhysicalResourceId and Data (Fn::GetAtt), FAILED fails
   the operation with its Reason, no response fails it too. On a stack's
   deletion custom resources go first, as CloudFormation deletes dependents
   before what they name (moto deletes in no particular order). Each request is
   delivered twice, one after the other, as Lambda may deliver an asynchronous
   event more than once even after the function answered, and the second answer
   must be the first's. NOT modelled: ServiceTimeout (the call is synchronous),
   Lambda's retries after an error, concurrent deliveries, and any other function code.

Resources moto's CloudFormation leaves out:

11. Resource types moto's CloudFormation does not model (it warns, skips them and
   still reports CREATE_COMPLETE) are created through moto's own backends where
   moto has them: AWS::CloudWatch::Alarm (PutMetricAlarm),
   AWS::AutoScaling::ScalingPolicy (PutScalingPolicy),
   AWS::AutoScaling::WarmPool (PutWarmPool; DescribeWarmPool then answers its
   configuration, but moto launches no pooled instance) and
   AWS::EC2::SecurityGroupEgress (AuthorizeSecurityGroupEgress), after checking
   the properties against that API's request shape (botocore's model), as
   CloudFormation's handler would refuse them; AWS::CloudFormation::WaitConditionHandle
   (no properties, no call: CloudFormation keeps it itself) as a URL for its Ref.
   Any other type moto lacks is not
   created, and never silently: its CREATE_COMPLETE event says "NOT CREATED by
   the emulator", and the stack's own CREATE_COMPLETE (or UPDATE_COMPLETE, or the
   parent's event for a nested stack) lists every such resource. coverage()
   says which happens to each type; the README's list is generated from it.
12. DeletionPolicy Retain is honoured when an update removes a resource (moto
   deletes it; it honours Retain only on stack deletion), and each retained
   resource gets a DELETE_SKIPPED event, as in CloudFormation.
13. The stack's Outputs are evaluated after each executed change set (moto
   builds them from the empty template of the change set's REVIEW_IN_PROGRESS
   stack, so DescribeStacks returned none).
14. A resource moto cannot update (no update handler, e.g. AWS::Logs::LogGroup)
   stays as it was, with UPDATE_COMPLETE saying so (moto dropped it from the
   stack, so its Ref and its Outputs were lost).
15. An update of an Auto Scaling group keeps its warm pool, as AWS updates a group in
   place (moto deletes and creates the group, and the new one has no warm pool).

Parameters on updates:

16. UsePreviousValue reuses a parameter's value as it was given (moto reuses its
   parsed list or number, and its update then fails on it), and a stack keeps
   every parameter's value, defaults included (moto keeps only those given, so
   passing a default later "changes" every resource that uses it). An update
   that changes nothing is refused ("No updates are to be performed") whether
   its template comes inline or from S3 (moto compared only an inline body).

VPC endpoints on updates:

17. An ``AWS::EC2::VPCEndpoint`` whose SubnetIds, SecurityGroupIds, RouteTableIds or
   PolicyDocument change is modified in place, keeping its id, as CloudFormation
   does through ModifyVpcEndpoint (none of them is create-only); moto has no update
   handler and kept the endpoint as it was (14.). NOT modelled: moto creates no
   network interface in an added subnet.

Conditions:

18. Fn::Equals compares a Number parameter's value as the string it was given, as
   CloudFormation does (a Number parameter's Ref is a string; "Parameters" reference).
   moto parses it into an int first, so ``Equals(Ref Number, "100")`` was never true: on
   the emulator every fleet took the Spot mode's MixedInstancesPolicy (OnDemandPercentage
   100, the default, compared as 100 against "100").

What the emulator starts with:

19. The example platform's inputs (winworkers.renderings.EXAMPLE_INPUTS), in us-east-1
   of moto's account: the buckets, the worker artifact object and the work queue, so
   that the examples pass winworkers deploy's preflight (winworkers.deploy.preflight),
   which refuses a queue, bucket or artifact that does not exist.

Resources without properties:

20. A resource that has no Properties (AWS::CloudFormation::WaitConditionHandle) is not
   updated when nothing about it changed, as in CloudFormation: moto's parse_resource adds
   "Properties": {} to the stored template when it creates it, so its diff saw every
   later template's resource as modified and updated it at each stack update.

Honest by construction (issue 26; winworkers.emulator.truth):

21. Invariants after every stack operation (an executed change set, CreateStack, UpdateStack, a
   stack deletion, judged once for the outermost): every resource a stack lists exists in moto's
   backends; nothing a stack made exists outside it unless retained; a deleted stack's outputs and
   resources are never evaluated again; a nested stack keeps its id across an update; a group runs
   the launch template version its template resolves. A violation ends the stack CREATE_FAILED,
   UPDATE_ROLLBACK_FAILED or DELETE_FAILED, its last event naming the invariant; after an update it
   also says the emulator did NOT roll back (no rollback runs). The existence checks cover the
   types truth.checked_types() names (coverage_table() marks the others NOT CHECKED). moto's reset
   (POST /moto-api/reset, local_aws's exit) clears this bookkeeping with moto's resources.
22. A deleted stack is never evaluated again: its outputs are frozen at its deletion (moto's
   ResourceMap creates a resource on first access, so a DescribeStacks of a deleted nested
   parent re-created its child and queue), and ListStackResources lists what a stack holds.
23. A nested stack (AWS::CloudFormation::Stack has no create-only property) is updated in
   place from its TemplateURL and Parameters, keeping its id (moto deleted the child and
   created another, orphaning its retained log groups).
24. An update modifies resources in dependency order (moto: template order, so a Spot
   group took its launch template's previous version when both changed), and a resource
   updated before one it names changed is updated again (a group after its launch template
   took a new version in the follow-up of 9.). NOT modelled: a custom resource is not sent a
   second Update then (its function would act twice), so its properties may hold the earlier value.
25. A change set is "no changes" only when every value, defaults included, is the stack's
   (moto compared the values given at creation: clearing a value an update had set was "no changes").
26. An update is judged by the type's createOnlyProperties (cfn-lint's registry schemas): the
   UPDATE_COMPLETE event says "replaced: create-only X changed", or NOT MODELLED where moto
   replaced what CloudFormation modifies in place, or modified what CloudFormation replaces.
   A type the emulator cannot create is kept on an update and its event says "not modelled"
   (its update failed on moto's keyword arguments: new_resource_name).

27. A resource an update removed (its Condition false, or gone from the template) and a later
   update adds again is created anew: moto's update deleted it but kept the object in its
   ResourceMap and handed it back (a warm pool, a queue key policy, the whole feature listed, not made).
28. A replacement cascades as in CloudFormation's "Update requires: Replacement": a resource whose
   create-only property names (Ref, Fn::GetAtt) a resource CloudFormation replaces is replaced too.
   Where moto kept it (a WinVpcCidr change: the security groups, endpoints, route table, flow log),
   its UPDATE_COMPLETE event says NOT MODELLED, naming the create-only property and the cause.
29. DescribeStackEvents answers in pages, newest first, with a NextToken for the rest (moto answered
   every event at once, so a reader of the newest page only was never caught out). AWS documents the
   pages (up to 1 MB), not a number of events: 100 a page here (EVENTS_PAGE; secondary source, register row 283).
   Each event's XML is kept while the event is unchanged (the same bytes as moto's serializer, for
   less CPU: every page serialized its events again).

Which of these moto would take as fixes (each small, against moto's own code): 1, 2, 3, 4, 5,
6, 7, 9, 12, 13, 14, 15, 16, 17, 18, 20, 22, 23, 24, 25, 27, 29. The emulator's own (not moto's
business): 8 (a refresh model that never progresses), 10 (custom resources in-process), 11
(types created through moto's backends, checked with botocore's shapes: moto would take real
CloudFormation models for them instead), 19 (the example platform), 21, 26 and 28 (judgement).
moto 5.2.6 (the newest release) changes none of the code these patch, so none can be dropped;
its rewritten ResponseURL handler would break 10: the pin stays at 5.2.5.

Where each patch lives: cloudformation.py (CloudFormation semantics: 1, 2, 4, 6, 7, 9, 12-14,
16, 18, 20, 22-25, 27-29, and the wrappers that run 21), services.py (per-service gaps: 3, 5, 8, 11,
15, 17, and coverage()), custom_resources.py (10), server.py (the server, 19, reset()),
truth.py (the invariants, 21, and the create-only judgement, 26), common.py (events, references).

What is NOT fixed: moto checks neither Rules nor parameter constraints; they
are judged by the tests that evaluate them (winworkers.rules,
winworkers.constraints), and winworkers deploy checks both before any call.
It runs no instances and no cfn-init either, and no Lambda but a custom
resource's inline code (10.): a complete stack on the emulator proves the
template's wiring, not the workers. UpdateReplacePolicy needs nothing here:
moto replaces none of the types these templates retain.
"""

from winworkers.emulator.custom_resources import _responses
from winworkers.emulator.server import (
    DEFAULT_PORT,
    ENVIRONMENT,
    INSTALL,
    REGION,
    EmulatorError,
    add_command,
    local_aws,
    reset,
    run,
)
from winworkers.emulator.services import coverage, coverage_table
from winworkers.emulator.truth import INVARIANTS, InvariantViolation

__all__ = [
    "DEFAULT_PORT",
    "ENVIRONMENT",
    "INSTALL",
    "INVARIANTS",
    "REGION",
    "EmulatorError",
    "InvariantViolation",
    "_responses",
    "add_command",
    "coverage",
    "coverage_table",
    "local_aws",
    "reset",
    "run",
]
