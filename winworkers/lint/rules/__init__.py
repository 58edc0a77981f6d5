"""The package's cfn-lint rules, one per module, each with its AWS source.

``cfn-lint --append-rules winworkers.lint.rules`` loads them from this module's
namespace (cfn-lint instantiates every ``CloudFormationLintRule`` subclass it
finds here), so every rule class must be imported below.

Each rule's id, title, description, source and tags are its class attributes,
and docs/lint-rules.md is generated from them (``make templates``).
"""

from winworkers.lint.rules.asg_waits_for_network import AsgWaitsForNetwork
from winworkers.lint.rules.cfn_init_msiexec_wait import CfnInitMsiexecNotAwaited
from winworkers.lint.rules.gateway_endpoint_principal import GatewayEndpointPrincipal
from winworkers.lint.rules.interface_endpoint_private_dns import InterfaceEndpointPrivateDns
from winworkers.lint.rules.lambda_reserved_concurrency import LambdaReservedConcurrency
from winworkers.lint.rules.nested_stack_list_parameter import NestedStackListParameter

__all__ = [
    "AsgWaitsForNetwork",
    "CfnInitMsiexecNotAwaited",
    "GatewayEndpointPrincipal",
    "InterfaceEndpointPrivateDns",
    "LambdaReservedConcurrency",
    "NestedStackListParameter",
]
