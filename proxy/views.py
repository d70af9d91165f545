"""The ``/image/<id>`` view: the life of a request, top to bottom, HTTP in and out only."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from .formats import negotiate
from .http import Validators, etag_for, image_response, is_not_modified, not_modified_response
from .params import parse_params
from .pipeline import PIPELINE_VERSION, render

images = Blueprint("images", __name__)


# merge_slashes=False: "//etc/passwd" must be a 404, not a redirect to a path that might exist.
@images.get("/image/<path:image_id>", provide_automatic_options=False, merge_slashes=False)
def image(image_id: str) -> Response:
    origin = current_app.extensions["proxy"]
    params = parse_params(request.args, origin.settings.max_dimension)  # 1. parse once
    source = origin.store.resolve(image_id)  # 2. locate; metadata only
    target = negotiate(params.fmt, request.accept_mimetypes)
    key = "|".join((PIPELINE_VERSION, source.id, source.version, params.canonical(), target))
    validators = Validators(  # 3. validators derive from the key
        etag=etag_for(key),
        last_modified=source.last_modified,
        max_age=origin.settings.max_age,
        vary_accept=params.fmt == "auto",
    )
    if is_not_modified(request, validators):  # 4. revalidation costs a stat
        return not_modified_response(validators)
    rendered = render(source.path, params, target)  # 5. decode -> steps -> encode
    return image_response(rendered.data, rendered.format.mime, validators)  # 6.
