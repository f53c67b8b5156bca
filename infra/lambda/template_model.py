"""What the infra scripts need to know about template.yaml: its Rust functions (logical id and
binary) and the HTTP routes each one is given. Parsed with the SAM translator's YAML loader,
which understands the short-form intrinsics (!Ref, !GetAtt, !Sub ...)."""

from dataclasses import dataclass, field
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse


@dataclass
class Function:
    logical_id: str
    binary: str
    # (METHOD, path) as written in the template's HttpApi events; METHOD may be ANY.
    routes: list[tuple[str, str]] = field(default_factory=list)
    # The function's own environment (not the Globals), as written.
    environment: dict = field(default_factory=dict)


def load(template: Path) -> dict:
    return yaml_parse(template.read_text())


def rust_functions(template: Path) -> list[Function]:
    document = load(template)
    functions = []
    for logical_id, resource in document.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        metadata = resource.get("Metadata", {})
        if metadata.get("BuildMethod") != "rust-cargolambda":
            continue
        binary = metadata.get("BuildProperties", {}).get("Binary")
        if not binary:
            raise ValueError(f"{logical_id}: Metadata.BuildProperties.Binary is required")
        properties = resource.get("Properties", {})
        routes = [
            (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
            for event in properties.get("Events", {}).values()
            if event.get("Type") == "HttpApi"
        ]
        environment = properties.get("Environment", {}).get("Variables", {})
        functions.append(Function(logical_id, binary, routes, environment))
    return functions


def built_code_dirs(build_dir: Path) -> dict[str, Path]:
    """Where `sam build` put each function's artifacts: functions built from one definition
    share a directory (e.g. `DocumentsApiFunction-Shared`), named by the built template."""
    document = load(build_dir / "template.yaml")
    return {
        logical_id: build_dir / resource["Properties"]["CodeUri"]
        for logical_id, resource in document.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(resource.get("Properties", {}).get("CodeUri"), str)
    }
