"""Who may do what in the native stack: each process's IAM policy, read from ``template.yaml``.

The SAM template is the only definition of the permissions. A process of the native stack
gets exactly the statements of its function's role (the role's inline policies and the
function's ``Policies``, SAM policy templates such as ``SQSPollerPolicy`` expanded), with
``!Ref``, ``!Sub`` and ``!GetAtt`` resolved to the emulator's resources. So a change of a
policy in the template reaches ``make run`` and the tests with no second edit.

    python -m devstack.iam.policies presign     # print the policy the presign service runs with
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

from divescore.settings import Settings, load_or_exit

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@dataclasses.dataclass(frozen=True)
class Principal:
    function: str  # the function's logical id in the template
    service: str | None = None  # keep only this service's actions (None: every action)


# Each process of the native stack and whose permissions it runs with.
PRINCIPALS = {
    "presign": Principal("PresignFunction"),
    "score": Principal("ScoreFunction"),
    "function": Principal("InferenceFunction"),
    # Lambda's SQS event source mapping polls with the function's role; the dispatcher plays it.
    "dispatcher": Principal("InferenceFunction", service="sqs"),
    "sweep": Principal("SweepFunction"),
    "notifier": Principal("NotifierFunction"),
}

# The template's resources that the emulator has, and the setting naming each.
LOCAL_RESOURCES = {
    "UploadBucket": "bucket",
    "JobsQueue": "queue",
    "JobsDeadLetterQueue": "dead_letter_queue",
    "JobsTable": "table",
    "CallbacksQueue": "callbacks_queue",
    "WebhookSecret": "webhook_secret",
}


class PolicyError(ValueError):
    """The template says something about a role that cannot be resolved locally."""


def load_template(path: Path | str | None = None) -> dict:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(Path(path or TEMPLATE).read_text())


def policy_for(process: str, settings: Settings, account: str, template: dict | None = None) -> dict:
    """The IAM policy document ``process`` runs with."""
    principal = PRINCIPALS[process]
    template = template if template is not None else load_template(settings.template or None)
    resolver = Resolver(template, settings, account)
    statements = [resolver.resolve(s) for s in function_statements(template, principal.function)]
    if principal.service:
        statements = [s for s in (_only_service(s, principal.service) for s in statements) if s]
    return {"Version": "2012-10-17", "Statement": statements}


def function_statements(template: dict, function: str) -> list[dict]:
    """The unresolved statements of ``function``'s role: its ``Role``'s inline policies, or
    its SAM ``Policies`` (inline documents and policy templates)."""
    resources = template["Resources"]
    properties = resources[function].get("Properties", {})
    statements: list[dict] = []
    role = properties.get("Role")
    if role is not None:
        role_id = _role_logical_id(role)
        for policy in resources[role_id]["Properties"].get("Policies", []):
            statements += _as_list(policy["PolicyDocument"]["Statement"])
        if resources[role_id]["Properties"].get("ManagedPolicyArns"):
            raise PolicyError(f"{role_id}: managed policies cannot be read from the template; use inline statements")
    for policy in _as_list(properties.get("Policies", [])):
        statements += _sam_policy_statements(function, policy)
    return statements


def _role_logical_id(role: Any) -> str:
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        target = role["Fn::GetAtt"]
        return (target.split(".") if isinstance(target, str) else target)[0]
    raise PolicyError(f"a function's Role must be !GetAtt SomeRole.Arn, not {role!r}")


def _sam_policy_statements(function: str, policy: Any) -> list[dict]:
    if isinstance(policy, dict) and "Statement" in policy:
        return _as_list(policy["Statement"])
    if isinstance(policy, dict) and len(policy) == 1:
        from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor

        processor = PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())
        [(name, parameters)] = policy.items()
        if processor.has(name):
            return _as_list(processor.convert(name, parameters or {})["Statement"])
    raise PolicyError(f"{function}: cannot read the policy {policy!r} (use statements or a SAM policy template)")


def _only_service(statement: dict, service: str) -> dict | None:
    actions = [a for a in _as_list(statement.get("Action", [])) if a.split(":")[0] == service]
    return {**statement, "Action": actions} if actions else None


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


class Resolver:
    """CloudFormation's intrinsic functions, evaluated against the native stack's resources."""

    def __init__(self, template: dict, settings: Settings, account: str):
        self.template = template
        self.settings = settings
        self.pseudo = {"AWS::Region": settings.region, "AWS::AccountId": account, "AWS::Partition": "aws",
                       "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "divescore-local"}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(name, argument)] = value.items()
            if name == "Ref":
                return self.ref(argument)
            if name == "Fn::GetAtt":
                logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(logical_id, attribute)
            if name == "Fn::Sub":
                return self.sub(argument)
            if name == "Fn::Join":
                separator, parts = argument
                return separator.join(str(self.resolve(p)) for p in self.resolve(parts))
            if name.startswith("Fn::"):
                raise PolicyError(f"{name} is not supported in role policies of the native stack")
        return {k: self.resolve(v) for k, v in value.items()}

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in LOCAL_RESOURCES:
            value = getattr(self.settings, LOCAL_RESOURCES[name])
            kind = self.template["Resources"][name]["Type"]
            if kind == "AWS::SecretsManager::Secret":  # Ref is the ARN, which ends in 6 random characters
                return f"arn:aws:secretsmanager:{self.settings.region}:{self.pseudo['AWS::AccountId']}:secret:{value}-*"
            return self._queue_url(value) if kind == "AWS::SQS::Queue" else value
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            return str(parameters[name].get("Default", ""))
        if name in self.template["Resources"]:
            # What the emulator does not have (a secret...): a name no local call uses.
            return self._elsewhere(name)
        raise PolicyError(f"!Ref {name}: no such parameter or resource in the template")

    def get_att(self, logical_id: str, attribute: str) -> str:
        region, account = self.settings.region, self.pseudo["AWS::AccountId"]
        resource = self.template["Resources"].get(logical_id)
        if resource is None:
            raise PolicyError(f"!GetAtt {logical_id}.{attribute}: no such resource in the template")
        kind = resource["Type"]
        if logical_id not in LOCAL_RESOURCES:
            # What the emulator does not have (log groups...): its ARN as on AWS; no local call uses it.
            if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
                name = self.resolve(resource["Properties"]["LogGroupName"])
                return f"arn:aws:logs:{region}:{account}:log-group:{name}"
            return self._elsewhere(logical_id)
        name = getattr(self.settings, LOCAL_RESOURCES[logical_id])
        attributes = {
            "AWS::S3::Bucket": {"Arn": f"arn:aws:s3:::{name}"},
            "AWS::SQS::Queue": {"Arn": f"arn:aws:sqs:{region}:{account}:{name}", "QueueName": name,
                                "QueueUrl": self._queue_url(name)},
            "AWS::DynamoDB::Table": {"Arn": f"arn:aws:dynamodb:{region}:{account}:table/{name}"},
        }.get(kind, {})
        if attribute not in attributes:
            raise PolicyError(f"!GetAtt {logical_id}.{attribute}: not known for {kind}")
        return attributes[attribute]

    def _elsewhere(self, logical_id: str) -> str:
        region, account = self.settings.region, self.pseudo["AWS::AccountId"]
        return f"arn:aws:cloudformation:{region}:{account}:stack/divescore-local/{logical_id}"

    def _queue_url(self, name: str) -> str:
        return f"https://sqs.{self.settings.region}.amazonaws.com/{self.pseudo['AWS::AccountId']}/{name}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in PRINCIPALS:
        print(f"usage: python -m devstack.iam.policies {{{','.join(PRINCIPALS)}}}", file=sys.stderr)
        return 2
    settings = load_or_exit()
    print(json.dumps(policy_for(argv[0], settings, account="123456789012"), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
