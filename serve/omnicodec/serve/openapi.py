"""The API's documentation: an OpenAPI 3.0.3 document and Swagger UI served offline.

FastAPI writes OpenAPI 3.1.0, which the Swagger UI of the installed ``swagger-ui-bundle``
wheel (4.15, the newest on PyPI) cannot read: /docs showed "Unable to render this
definition ... does not specify a valid version field" in a browser. Swagger UI's assets
come from that wheel, not from a CDN, so /docs works on a machine with no internet; the
document it reads is rewritten to 3.0.3 here (``as_openapi_30``) instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response

OPENAPI_VERSION = "3.0.3"


def as_openapi_30(node: Any) -> Any:
    """A 3.1 (JSON Schema 2020-12) document rewritten with its 3.0 equivalents: a null among
    ``type`` or ``anyOf``/``oneOf`` becomes ``nullable``, ``const`` a one-value ``enum``,
    ``examples`` one ``example``, a numeric ``exclusiveMinimum``/``Maximum`` the boolean form."""
    if isinstance(node, list):
        return [as_openapi_30(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_openapi_30(v) for k, v in node.items()}
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        if len(types) == 1:
            out["type"] = types[0]
        else:
            del out["type"]
            out["anyOf"] = [{"type": t} for t in types]
    for key in ("anyOf", "oneOf"):
        if isinstance(out.get(key), list) and {"type": "null"} in out[key]:
            rest = [s for s in out[key] if s != {"type": "null"}]
            out["nullable"] = True
            if len(rest) == 1:
                del out[key]
                out = {**rest[0], **out}
            else:
                out[key] = rest
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list):  # a schema's list; a parameter's or media type's is a map
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), (int, float)) and not isinstance(out[bound], bool):
            out[plain], out[bound] = out[bound], True
    return out


def mount_docs(app: FastAPI) -> None:
    """/openapi.json as OpenAPI 3.0.3 and /docs with Swagger UI's assets served by this app
    (from the swagger-ui-bundle wheel). No auth, like /healthz."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = {**as_openapi_30(doc), "openapi": OPENAPI_VERSION}
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="omnicodec API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")
