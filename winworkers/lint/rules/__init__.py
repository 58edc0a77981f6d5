"""The package's cfn-lint rules, one per module, each with its AWS source.

``cfn-lint --append-rules winworkers.lint.rules`` loads them from this module's
namespace (cfn-lint instantiates every ``CloudFormationLintRule`` subclass it
finds here), so every rule class must be imported below.

| Id | Rule |
| --- | --- |
| E9101 | Gateway VPC endpoint policy names a principal |
| E9102 | Nested stack parameter given a list |
| W9103 | Lambda function reserves concurrency |
| W9104 | Interface endpoint private DNS in a VPC the template does not create (opt-in) |
| E9105 | Auto Scaling group does not wait for the network its instances boot through |
| E9106 | cfn-init runs msiexec without waiting |
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
