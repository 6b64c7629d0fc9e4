"""OpenAPI: the problem schema and the hooks that add error responses and
examples to every operation."""

from ledger.api.errors import PROBLEM_CONTENT_TYPE

# OpenAPI --------------------------------------------------------------------

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem document, as every error of the API is answered.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A URI identifying the kind of problem."},
        "title": {"type": "string", "description": "Short summary of the kind of problem."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "What went wrong in this occurrence."},
        "instance": {"type": "string", "description": "The path of the request."},
        "retry_after": {"type": "integer", "description": "Seconds to wait (429 only)."},
        "current_revision": {
            "type": "integer",
            "description": "The record's current revision (412 only).",
        },
        "history_url": {
            "type": "string",
            "format": "uri",
            "description": "Where the deleted record's history is (410 only).",
        },
        "errors": {
            "type": "array",
            "description": "Validation errors (400), one per invalid value.",
            "items": {"$ref": "#/components/schemas/ProblemError"},
        },
    },
}

PROBLEM_ERROR_SCHEMA = {
    "type": "object",
    "description": "One invalid value of a request.",
    "required": ["detail", "code"],
    "properties": {
        "pointer": {
            "type": "string",
            "description": "JSON pointer (RFC 6901) to the invalid body value.",
        },
        "parameter": {"type": "string", "description": "Name of the invalid query parameter."},
        "header": {"type": "string", "description": "Name of the invalid request header."},
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
}

_ERROR_RESPONSES = {
    "400": "The request is malformed or did not validate.",
    "401": "Authentication is required for this operation.",
    "403": "The client is not allowed to do this.",
    "404": "No such resource.",
    "405": "The method is not allowed here.",
    "409": "The change conflicts with the stored data.",
    "410": "The record was deleted; see history_url.",
    "412": "If-Match names an old revision; current_revision says the new one.",
    "422": "The Idempotency-Key was used with a different body.",
    "428": "If-Match is required.",
    "413": "The request body is too large.",
    "415": "The request body is not JSON.",
    "429": "Too many requests; wait `Retry-After` seconds.",
    "500": "The server failed.",
    "503": "The service or its database is unavailable.",
}
_WRITE_ERRORS = ["400", "401", "403", "404", "409", "410", "412", "413", "415", "428", "429"]
_WRITE_ERRORS += ["500", "503"]
_ERRORS_BY_METHOD = {
    "get": ["400", "404", "410", "429", "500", "503"],
    "post": ["400", "401", "403", "409", "413", "415", "422", "429", "500", "503"],
    "put": _WRITE_ERRORS,
    "patch": _WRITE_ERRORS,
    "delete": ["400", "401", "403", "404", "409", "410", "412", "428", "429", "500", "503"],
}


def problem_responses_hook(result, generator, request, public):
    """Document the shared Problem component as the error response of every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ProblemError"] = PROBLEM_ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            codes = list(_ERRORS_BY_METHOD.get(method, []))
            if any(p["name"] == "If-Match" for p in operation.get("parameters", [])):
                codes += ["404", "410", "412", "428"]  # a conditional POST (merge, unmerge)
            for code in dict.fromkeys(codes):
                if code in ("404", "410") and "{" not in _path_of(result, path_item):
                    continue  # lists are never missing
                responses.setdefault(
                    code,
                    {
                        "description": _ERROR_RESPONSES[code],
                        "content": {PROBLEM_CONTENT_TYPE: {"schema": ref}},
                    },
                )
    return result


def merged_redirect_hook(result, generator, request, public):
    """The detail of a mergeable resource (actors, places) may answer 308, to
    the record a merged one was merged into (ledger.api.merges)."""
    from ledger import registry
    from ledger.models import Mergeable

    for resource in registry.resources():
        if not issubclass(resource.model, Mergeable):
            continue
        operation = result.get("paths", {}).get(f"/api/v1/{resource.name}/{{id}}/", {}).get("get")
        if operation is not None:
            operation.setdefault("responses", {})["308"] = {
                "description": "The record was merged into another: `Location` names it. "
                "Clients that follow redirects get that record.",
            }
    return result


def _path_of(result: dict, path_item: dict) -> str:
    return next(path for path, item in result["paths"].items() if item is path_item)


def client_hygiene_hook(result, generator, request, public):
    """Make generated clients pleasant: readable names for the blank and null
    choices drf-spectacular emits, reads marked as open to anonymous clients, and
    path parameters described."""
    schemas = result.get("components", {}).get("schemas", {})
    if "BlankEnum" in schemas:
        schemas["BlankEnum"]["x-enum-varnames"] = ["BLANK"]
    if "NullEnum" in schemas:
        schemas["NullEnum"]["x-enum-varnames"] = ["NULL"]
    path_descriptions = {"id": "The record's id.", "revision": "A revision of the record."}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method == "get" and {} not in operation.setdefault("security", []):
                operation["security"].append({})
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in path_descriptions:
                    parameter.setdefault("description", path_descriptions[parameter["name"]])
    return result


def single_response_examples_hook(result, generator, request, public):
    """Give each response its example as `example`, not an `examples` map of one:
    openapi-generator warns about response `examples` maps."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    examples = media.get("examples")
                    if examples and len(examples) == 1:
                        media["example"] = next(iter(examples.values()))["value"]
                        del media["examples"]
    return result


COMMIT_POSITION_READ = (
    "A commit position from the answer to one of your writes (`X-Commit-Position`, "
    "such as `16/B374D848`): the read is served by a database that has that write. "
    "Only with read replicas; a malformed one is a 400. Generated clients carry it "
    "from call to call (docs/api.md, Reading your writes)."
)
COMMIT_POSITION_WRITE = (
    "Where this write committed, when the service reads from replicas: send it back "
    "in `X-Commit-Position` with your next reads to see this write and every one before it."
)


def commit_position_hook(result, generator, request, public):
    """The read-your-writes header (ledger/routing.py): a parameter of every read,
    a header of every successful write's answer."""
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in ("get", "head"):
                operation.setdefault("parameters", []).append(
                    {
                        "in": "header",
                        "name": "X-Commit-Position",
                        "schema": {"type": "string"},
                        "description": COMMIT_POSITION_READ,
                    }
                )
            elif method in ("post", "put", "patch", "delete"):
                for code, response in operation.get("responses", {}).items():
                    if str(code).startswith("2"):
                        response.setdefault("headers", {})["X-Commit-Position"] = {
                            "schema": {"type": "string"},
                            "description": COMMIT_POSITION_WRITE,
                        }
    return result
