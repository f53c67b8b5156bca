#!/usr/bin/env python3
"""Deploys template.yaml onto a local AWS emulator and writes the stack's outputs.

Normally run through `bash infra/deploy-local.sh`, which builds, starts moto and then calls
this with AWS_ENDPOINT_URL set. Steps:

1. Upload each function's zip (.aws-sam/zips, from infra/lambda/build.py) to an artifacts
   bucket on the emulator and point the function's CodeUri at it (what `sam package` does).
2. Translate the SAM template into plain CloudFormation with aws-sam-translator.
3. Adapt it to the emulator (every change is listed in emulator-adaptations.json):
   - resource types moto's CloudFormation cannot create are stripped: the HTTP API
     (AWS::ApiGatewayV2::*; the local runner serves the API instead, so the ApiUrl output
     names it), and whatever only refers to stripped resources (the API's Lambda permissions);
   - SQS event source mappings are stripped: the emulator runs no Lambdas, and a mapping
     would make moto receive the queue's messages itself to invoke a function it cannot run.
     Pollers drive the functions' handlers instead (the local runner; infra/lambda/check.py);
   - queue and bucket policies and alarms, which moto's CloudFormation does not support, and
     the bucket and table properties it ignores (public access block, versioning, lifecycle,
     notification, CORS, ownership; TTL, point-in-time recovery) are applied through the
     service APIs once the stack exists, with their intrinsic functions resolved here.
4. Create the stack, wait for it, verify the SES sender identity (SES refuses mail from
   unverified senders; the template cannot verify an address).
5. Write <out>/outputs.json (flat OutputKey -> OutputValue), <out>/runner.env (environment
   for `local-runner` with BACKEND=aws) and <out>/parameters.json (the deploy parameters,
   including the generated dev secrets; mode 0600).
"""

import argparse
import base64
import copy
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

import boto3
import botocore.exceptions
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[1]

# Stripped whatever the emulator: it runs no Lambdas (see the module doc).
ALWAYS_STRIPPED = {
    "AWS::Lambda::EventSourceMapping": "the emulator runs no Lambdas; a mapping would make it consume the queue itself. Pollers drive the handler instead",
}
# Not creatable by moto's CloudFormation, but settable through the service APIs after create.
APPLIED_AFTER_CREATE = {"AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::CloudWatch::Alarm"}
# Resource properties moto's CloudFormation ignores; applied after create as well.
IGNORED_PROPERTIES = {
    "AWS::S3::Bucket": ["PublicAccessBlockConfiguration", "VersioningConfiguration", "LifecycleConfiguration", "NotificationConfiguration", "CorsConfiguration", "OwnershipControls"],
    "AWS::DynamoDB::Table": ["TimeToLiveSpecification", "PointInTimeRecoverySpecification"],
}
# Environment variables of the local runner, from the stack outputs.
RUNNER_ENV_FROM_OUTPUTS = {
    "TABLE_NAME": "TableName",
    "EVENTS_QUEUE_URL": "EventsQueueUrl",
    "EVENTS_DLQ_URL": "EventsDlqUrl",
    "BUCKET_NAME": "BucketName",
    "UPLOADS_QUEUE_URL": "UploadsQueueUrl",
    "UPLOADS_DLQ_URL": "UploadsDlqUrl",
    "EMAIL_FROM": "EmailFrom",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="the emulator (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--stack-name", default="gosuslugi-local")
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--zips", default=str(ROOT / ".aws-sam" / "zips"), help="directory of <Function>.zip")
    parser.add_argument("--out", default=str(ROOT / ".run" / "local-stack"), help="where outputs.json and runner.env go")
    parser.add_argument("--api-url", default="http://127.0.0.1:3000", help="where the local runner will serve the API")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE", help="template parameter override (repeatable)")
    args = parser.parse_args()
    if not args.endpoint_url:
        print("deploy-local: no emulator endpoint; set AWS_ENDPOINT_URL (this never deploys to real AWS)", file=sys.stderr)
        return 2

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    session = boto3.session.Session(region_name=region, aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"), aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"))
    aws = Clients(session, args.endpoint_url)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    started = time.monotonic()
    parameters = deploy_parameters(args)
    sam_template = yaml_parse(Path(args.template).read_text())
    code = upload_code(aws, args.stack_name, sam_template, Path(args.zips))
    for logical_id, (bucket, key) in code.items():
        sam_template["Resources"][logical_id]["Properties"]["CodeUri"] = f"s3://{bucket}/{key}"
    sam_template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    cfn = transform(sam_template, parameters, NoManagedPolicies())
    timings["package_and_translate_seconds"] = round(time.monotonic() - started, 2)

    adapted, deferred, adaptations = adapt_for_emulator(cfn, args.api_url)
    (out / "template.emulator.json").write_text(json.dumps(adapted, indent=1) + "\n")

    started = time.monotonic()
    create_stack(aws, args.stack_name, adapted, parameters)
    timings["create_stack_seconds"] = round(time.monotonic() - started, 2)

    started = time.monotonic()
    context = Context(aws, args.stack_name, adapted, parameters, region, args.endpoint_url)
    applied = apply_after_create(aws, context, deferred)
    adaptations.extend(applied)
    if not ses_identity_exists(aws, parameters["EmailFrom"]):
        aws.sesv2.create_email_identity(EmailIdentity=parameters["EmailFrom"])
    timings["apply_after_create_seconds"] = round(time.monotonic() - started, 2)

    outputs = stack_outputs(aws, args.stack_name)
    write_private(out / "parameters.json", json.dumps(parameters, indent=2) + "\n")
    (out / "outputs.json").write_text(json.dumps(outputs, indent=2) + "\n")
    (out / "emulator-adaptations.json").write_text(json.dumps(adaptations, indent=2) + "\n")
    write_private(out / "runner.env", runner_env(outputs, parameters, args.endpoint_url, region))
    (out / "deploy-timings.json").write_text(json.dumps(timings, indent=2) + "\n")

    print(f"stack {args.stack_name} deployed on {args.endpoint_url}")
    print("emulator adaptations:")
    for item in adaptations:
        print(f"  - {item['action']:<13} {item['resource']:<38} {item['reason']}")
    print("outputs:")
    width = max(len(key) for key in outputs)
    for key, value in outputs.items():
        print(f"  {key:<{width}}  {value}")
    print(f"written: {out / 'outputs.json'}, {out / 'runner.env'} (0600), {out / 'parameters.json'} (0600)")
    print("deploy wall time: " + ", ".join(f"{k.removesuffix('_seconds')} {v}s" for k, v in timings.items()))
    return 0


class Clients:
    def __init__(self, session, endpoint_url):
        self._session = session
        self._endpoint_url = endpoint_url
        self._clients = {}

    def __getattr__(self, service):
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self._endpoint_url)
        return self._clients[service]


class NoManagedPolicies:
    """The template names managed policies by ARN only, so no IAM lookup is needed."""

    def load(self):
        return {}


# ---------------------------------------------------------------------------------------------
# parameters and code
# ---------------------------------------------------------------------------------------------


def deploy_parameters(args) -> dict:
    """Local defaults for every required parameter; secrets are generated dev values."""
    parameters = {
        "Stage": "dev",
        "EmailFrom": "no-reply@gosuslugi.local",
        "JwtIssuer": args.api_url,
        "JwtSigningKeys": os.environ.get("JWT_SIGNING_KEYS") or generate_jwt_key_ring(),
        "IndexKey": os.environ.get("INDEX_KEY") or base64.b64encode(os.urandom(32)).decode(),
        # The dev seed's secrets are public; fine on an emulator, never on AWS.
        "AgenciesJson": json.dumps(json.loads((ROOT / "infra" / "local" / "seed" / "agencies.json").read_text()), separators=(",", ":"), ensure_ascii=False),
        # OAuth (issue 9): the seed clients as a real deployment holds them, hashes only.
        "ClientsJson": seed_clients_hashes_only(),
    }
    for item in args.parameter:
        key, separator, value = item.partition("=")
        if not separator:
            raise SystemExit(f"--parameter needs KEY=VALUE, got {item!r}")
        parameters[key] = value
    return parameters


def generate_jwt_key_ring() -> str:
    """A one-key ring in shared::keys' format: PKCS#8 v2 (RFC 5958, with the public key) Ed25519."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    # SEQUENCE { INTEGER 1, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed }, [1] BIT STRING public }
    der = bytes.fromhex("3051020101300506032b657004220420") + seed + bytes.fromhex("812100") + public
    kid = "local-" + hashlib.sha256(public).hexdigest()[:16]
    return json.dumps({"keys": [{"kid": kid, "pkcs8": base64.b64encode(der).decode()}]})


def upload_code(aws, stack_name: str, sam_template: dict, zips: Path) -> dict:
    """Uploads each function's zip, named by its digest; returns logical id -> (bucket, key)."""
    bucket = f"{stack_name.lower()}-artifacts"
    try:
        aws.s3.create_bucket(Bucket=bucket)
    except aws.s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    locations = {}
    for logical_id, resource in sam_template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        archive = zips / f"{logical_id}.zip"
        if not archive.is_file():
            raise SystemExit(f"deploy-local: {archive} is missing; run python3 infra/lambda/build.py (or bash infra/deploy-local.sh without --no-build)")
        body = archive.read_bytes()
        key = f"{logical_id}-{hashlib.sha256(body).hexdigest()[:16]}.zip"
        aws.s3.put_object(Bucket=bucket, Key=key, Body=body)
        locations[logical_id] = (bucket, key)
    return locations


# ---------------------------------------------------------------------------------------------
# adapting the translated template
# ---------------------------------------------------------------------------------------------


def supported_types() -> set:
    """Resource types moto's CloudFormation can create (from the installed moto)."""
    from moto.cloudformation.parsing import get_model_map

    return set(get_model_map())


def adapt_for_emulator(template: dict, api_url: str):
    template = copy.deepcopy(template)
    resources = template["Resources"]
    supported = supported_types()
    adaptations = []
    removed = {}
    deferred = {}
    for logical_id, resource in list(resources.items()):
        kind = resource["Type"]
        if kind in ALWAYS_STRIPPED:
            removed[logical_id] = ALWAYS_STRIPPED[kind]
        elif kind in APPLIED_AFTER_CREATE:
            deferred[logical_id] = resources.pop(logical_id)
        elif kind not in supported:
            removed[logical_id] = f"moto's CloudFormation does not support {kind}"
    for logical_id in removed:
        resources.pop(logical_id)
    for logical_id, properties in ignored_properties(resources).items():
        deferred[logical_id] = {"Type": resources[logical_id]["Type"], "Properties": properties, "Partial": True}

    # The HTTP API is gone: the local runner serves every route, so ApiUrl names it.
    outputs = template.get("Outputs", {})
    if "ApiUrl" in outputs and references(outputs["ApiUrl"]) & removed.keys():
        outputs["ApiUrl"] = {"Description": "The local runner serving every route (the emulator has no API Gateway v2)", "Value": api_url}
        adaptations.append({"action": "replaced", "resource": "Outputs.ApiUrl", "reason": f"the HTTP API is served by the local runner at {api_url}"})

    # Whatever still refers to a stripped resource goes too (the API's invoke permissions).
    changed = True
    while changed:
        changed = False
        for logical_id, resource in list(resources.items()):
            depends = resource.get("DependsOn")
            if depends:
                kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d in resources]
                if kept:
                    resource["DependsOn"] = kept
                else:
                    resource.pop("DependsOn")
            gone = references(resource) & removed.keys()
            if gone:
                removed[logical_id] = f"refers to stripped {', '.join(sorted(gone))}"
                resources.pop(logical_id)
                changed = True
        for name, output in list(outputs.items()):
            gone = references(output) & removed.keys()
            if gone:
                outputs.pop(name)
                removed[f"Outputs.{name}"] = f"refers to stripped {', '.join(sorted(gone))}"
    for logical_id, reason in removed.items():
        adaptations.append({"action": "stripped", "resource": logical_id, "reason": reason})
    return template, deferred, adaptations


def ignored_properties(resources: dict) -> dict:
    """Moves the properties moto ignores out of the template; returns them by logical id."""
    moved = {}
    for logical_id, resource in resources.items():
        names = IGNORED_PROPERTIES.get(resource["Type"], [])
        properties = resource.get("Properties", {})
        taken = {name: properties.pop(name) for name in names if name in properties}
        if taken:
            moved[logical_id] = taken
    return moved


def references(node) -> set:
    """Logical ids a template fragment refers to (Ref, Fn::GetAtt, Fn::Sub variables)."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                local = set(value[1]) if isinstance(value, list) and len(value) > 1 else set()
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)} - local
                if isinstance(value, list) and len(value) > 1:
                    found |= references(value[1])
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


# ---------------------------------------------------------------------------------------------
# the stack
# ---------------------------------------------------------------------------------------------


def create_stack(aws, stack_name: str, template: dict, parameters: dict) -> None:
    cfn = aws.cloudformation
    if stack_exists(aws, stack_name):
        print(f"stack {stack_name} exists on the emulator; deleting it first (retained resources stay)")
        cfn.delete_stack(StackName=stack_name)
        wait_for(aws, stack_name, {"DELETE_COMPLETE"}, {"DELETE_FAILED"}, allow_missing=True)
    declared = template.get("Parameters", {})
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template, separators=(",", ":")),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items() if k in declared],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    wait_for(aws, stack_name, {"CREATE_COMPLETE"}, {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED"})


def stack_exists(aws, stack_name: str) -> bool:
    try:
        stacks = aws.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except botocore.exceptions.ClientError:
        return False
    return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)


def wait_for(aws, stack_name, done, failed, allow_missing=False, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = aws.cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
        except botocore.exceptions.ClientError:
            if allow_missing:
                return
            raise
        if status in done:
            return
        if status in failed or time.monotonic() > deadline:
            for event in aws.cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]:
                if "FAILED" in event.get("ResourceStatus", ""):
                    print(f"  {event['LogicalResourceId']}: {event['ResourceStatus']} {event.get('ResourceStatusReason', '')}", file=sys.stderr)
            raise SystemExit(f"deploy-local: stack {stack_name} ended {status}")
        time.sleep(0.5)


def stack_outputs(aws, stack_name: str) -> dict:
    stack = aws.cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in sorted(stack.get("Outputs", []), key=lambda o: o["OutputKey"])}


def ses_identity_exists(aws, identity: str) -> bool:
    try:
        aws.sesv2.get_email_identity(EmailIdentity=identity)
        return True
    except botocore.exceptions.ClientError:
        return False


# ---------------------------------------------------------------------------------------------
# what moto's CloudFormation does not do, applied through the service APIs
# ---------------------------------------------------------------------------------------------


class Context:
    """Resolves intrinsic functions against the created stack."""

    def __init__(self, aws, stack_name, template, parameters, region, endpoint_url):
        self.aws = aws
        self.plain_http = endpoint_url.lower().startswith("http://")
        self.template = template
        self.stack_name = stack_name
        self.region = region
        self.account = aws.sts.get_caller_identity()["Account"]
        declared = template.get("Parameters", {})
        self.parameters = {k: str(v.get("Default", "")) for k, v in declared.items()} | {k: v for k, v in parameters.items() if k in declared}
        self.physical = {}
        paginator = aws.cloudformation.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=stack_name):
            for summary in page["StackResourceSummaries"]:
                self.physical[summary["LogicalResourceId"]] = (summary["ResourceType"], summary["PhysicalResourceId"])

    def pseudo(self, name):
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
        }.get(name)

    def ref(self, name):
        if name in self.parameters:
            return self.parameters[name]
        if self.pseudo(name) is not None:
            return self.pseudo(name)
        if name not in self.physical:
            raise KeyError(f"Ref to unknown {name}")
        return self.physical[name][1]

    def get_att(self, name, attribute):
        kind, physical = self.physical[name]
        if kind == "AWS::SQS::Queue":
            attributes = self.aws.sqs.get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"]
            return {"Arn": attributes["QueueArn"], "QueueName": physical.rstrip("/").rsplit("/", 1)[-1], "QueueUrl": physical}[attribute]
        if kind == "AWS::S3::Bucket":
            return {"Arn": f"arn:aws:s3:::{physical}", "DomainName": f"{physical}.s3.amazonaws.com"}[attribute]
        if kind == "AWS::DynamoDB::Table":
            return {"Arn": self.aws.dynamodb.describe_table(TableName=physical)["Table"]["TableArn"]}[attribute]
        if kind == "AWS::Lambda::Function":
            return {"Arn": getattr(self.aws, "lambda").get_function_configuration(FunctionName=physical)["FunctionArn"]}[attribute]
        raise KeyError(f"GetAtt {name}.{attribute} ({kind}) is not resolved by deploy-local")

    def condition(self, name):
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, node):
        if isinstance(node, list):
            return [value for value in (self.resolve(item) for item in node) if value is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return NO_VALUE if value == "AWS::NoValue" else self.ref(value)
            if key == "Fn::GetAtt":
                name, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Sub":
                text, local = (value[0], self.resolve(value[1])) if isinstance(value, list) else (value, {})
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(local[m.group(1)] if m.group(1) in local else self.sub_variable(m.group(1))), text)
            if key == "Fn::Join":
                return value[0].join(str(v) for v in self.resolve(value[1]))
            if key == "Fn::Select":
                return self.resolve(value[1])[int(self.resolve(value[0]))]
            if key == "Fn::Split":
                return str(self.resolve(value[1])).split(value[0])
            if key == "Fn::If":
                return self.resolve(value[1] if self.condition(value[0]) else value[2])
            if key == "Fn::Equals":
                return str(self.resolve(value[0])) == str(self.resolve(value[1]))
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in value)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in value)
            if key == "Condition":
                return self.condition(value)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def sub_variable(self, name):
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self.get_att(resource, attribute)
        return self.ref(name)


NO_VALUE = object()


def apply_after_create(aws, context: Context, deferred: dict) -> list:
    applied = []
    for logical_id, resource in deferred.items():
        kind = resource["Type"]
        properties = context.resolve(resource.get("Properties", {}))
        if kind == "AWS::SQS::QueuePolicy":
            for queue_url in properties["Queues"]:
                aws.sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])})
            reason = "moto's CloudFormation does not support it; set as the queues' Policy attribute (moto's SQS does not enforce it)"
        elif kind == "AWS::S3::BucketPolicy":
            document = properties["PolicyDocument"]
            statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
            # moto enforces bucket policies but speaks plain HTTP: a TLS-only deny would refuse everything.
            kept = [s for s in statements if not (context.plain_http and requires_tls(s))]
            dropped = [s.get("Sid", "?") for s in statements if s not in kept]
            if kept:
                aws.s3.put_bucket_policy(Bucket=properties["Bucket"], Policy=json.dumps({**document, "Statement": kept}))
            if not kept:
                applied.append({"action": "stripped", "resource": logical_id, "reason": f"the emulator serves plain HTTP and enforces bucket policies, so {', '.join(dropped)} would refuse every request"})
                continue
            reason = "moto's CloudFormation does not support it; put with PutBucketPolicy" + (f" without {', '.join(dropped)} (plain HTTP emulator)" if dropped else "")
        elif kind == "AWS::CloudWatch::Alarm":
            put_alarm(aws, f"{context.stack_name}-{logical_id}", properties)
            reason = "moto's CloudFormation does not support it; created with PutMetricAlarm"
        elif kind == "AWS::S3::Bucket":
            configure_bucket(aws, context.ref(logical_id), properties)
            reason = f"moto's CloudFormation ignores {', '.join(properties)}; applied with the S3 API"
        elif kind == "AWS::DynamoDB::Table":
            configure_table(aws, context.ref(logical_id), properties)
            reason = f"moto's CloudFormation ignores {', '.join(properties)}; applied with the DynamoDB API"
        else:
            raise SystemExit(f"deploy-local: no after-create handling for {kind}")
        applied.append({"action": "applied", "resource": logical_id, "reason": reason})
    return applied


def requires_tls(statement: dict) -> bool:
    """A Deny for requests without TLS (`aws:SecureTransport` false)."""
    condition = statement.get("Condition", {}).get("Bool", {})
    return statement.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport", "")).lower() == "false"


def put_alarm(aws, name: str, p: dict) -> None:
    aws.cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=p.get("AlarmDescription", ""),
        Namespace=p["Namespace"],
        MetricName=p["MetricName"],
        Dimensions=p.get("Dimensions", []),
        Statistic=p["Statistic"],
        Period=int(p["Period"]),
        EvaluationPeriods=int(p["EvaluationPeriods"]),
        Threshold=float(p["Threshold"]),
        ComparisonOperator=p["ComparisonOperator"],
        TreatMissingData=p.get("TreatMissingData", "missing"),
    )


def configure_bucket(aws, bucket: str, p: dict) -> None:
    s3 = aws.s3
    if "PublicAccessBlockConfiguration" in p:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={k: bool(v) for k, v in p["PublicAccessBlockConfiguration"].items()})
    if "OwnershipControls" in p:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=p["OwnershipControls"])
    if "VersioningConfiguration" in p:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": p["VersioningConfiguration"]["Status"]})
    if "LifecycleConfiguration" in p:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [lifecycle_rule(r) for r in p["LifecycleConfiguration"]["Rules"]]})
    if "CorsConfiguration" in p:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [cors_rule(r) for r in p["CorsConfiguration"]["CorsRules"]]})
    if "NotificationConfiguration" in p:
        queues = [
            {
                "QueueArn": q["Queue"],
                "Events": [q["Event"]],
                **({"Filter": {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}}} if "Filter" in q else {}),
            }
            for q in p["NotificationConfiguration"].get("QueueConfigurations", [])
        ]
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queues})


def lifecycle_rule(rule: dict) -> dict:
    """CloudFormation's lifecycle rule shape -> the S3 API's."""
    api = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
    if "ExpiredObjectDeleteMarker" in rule:
        api["Expiration"] = {"ExpiredObjectDeleteMarker": bool(rule["ExpiredObjectDeleteMarker"])}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    return api


def cors_rule(rule: dict) -> dict:
    api = {"AllowedMethods": rule["AllowedMethods"], "AllowedOrigins": rule["AllowedOrigins"]}
    if "AllowedHeaders" in rule:
        api["AllowedHeaders"] = rule["AllowedHeaders"]
    if "MaxAge" in rule:
        api["MaxAgeSeconds"] = int(rule["MaxAge"])
    return api


def configure_table(aws, table: str, p: dict) -> None:
    if "TimeToLiveSpecification" in p:
        spec = p["TimeToLiveSpecification"]
        aws.dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={"AttributeName": spec["AttributeName"], "Enabled": bool(spec["Enabled"])})
    if "PointInTimeRecoverySpecification" in p:
        enabled = bool(p["PointInTimeRecoverySpecification"].get("PointInTimeRecoveryEnabled", False))
        aws.dynamodb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled})


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


def runner_env(outputs: dict, parameters: dict, endpoint_url: str, region: str) -> str:
    lines = [
        "# Environment for `local-runner` against the emulator stack (written by infra/deploy-local.py).",
        "# Use: set -a; . .run/local-stack/runner.env; set +a; cargo run -p local-runner",
        "BACKEND=aws",
        f"AWS_ENDPOINT_URL={endpoint_url}",
        f"AWS_REGION={region}",
        f"AWS_DEFAULT_REGION={region}",
        "AWS_ACCESS_KEY_ID=test",
        "AWS_SECRET_ACCESS_KEY=test",
        # SMS and email go to the emulator, so nobody real gets a code: show them at GET /dev/outbox.
        "DEV_OUTBOX=1",
    ]
    lines += [f"{env}={outputs[output]}" for env, output in RUNNER_ENV_FROM_OUTPUTS.items() if output in outputs]
    # The same keys as the stack's functions, so tokens pass between the runner and them.
    lines.append(f"JWT_SIGNING_KEYS='{parameters['JwtSigningKeys']}'")
    lines.append(f"JWT_ISSUER={parameters['JwtIssuer']}")
    lines.append(f"INDEX_KEY={parameters['IndexKey']}")
    return "\n".join(lines) + "\n"


def seed_clients_hashes_only() -> str:
    """The seed's agency clients without the dev-only plain secrets (what AWS would get).

    Lambda caps a function's environment at 4 KB: with the globals, about ten clients fit in
    CLIENTS_JSON, so the stack gets the agencies only (the partners serve the sign-in flow, not
    deployed yet); a larger registry needs loading from a parameter store (not built yet)."""
    seed = json.loads((ROOT / "infra" / "local" / "seed" / "clients.json").read_text())
    # Empty lists are the default; dropping them saves bytes too.
    clients = [{k: v for k, v in client.items() if k != "client_secret" and v != []} for client in seed["clients"] if client["kind"] == "agency"]
    return json.dumps({"clients": clients}, separators=(",", ":"), ensure_ascii=False)


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.chmod(path, 0o600)


if __name__ == "__main__":
    sys.exit(main())
