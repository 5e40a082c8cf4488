"""The API's JSON parser: it reads the body from the request stream under the view's own size limit.

DRF's JSONParser reads `request.body`, which Django refuses past DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) with an
HTML error page before the view can answer: a bulk upsert of a few thousand customers failed that way. The
limit that matters is the operation's own (`ApiView.max_body_bytes`, checked from Content-Length before the
body is read), so this parser, not being a JSONParser, is handed the stream itself; Django's stream never
reads past Content-Length, so a body without one reads as empty.
"""

from __future__ import annotations

import codecs
import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, get_encoding
from rest_framework.renderers import JSONRenderer
from rest_framework.utils import json as strict_json


class StreamedJSONParser(BaseParser):
    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            # NaN and Infinity are not JSON: refused, as DRF's strict parser does.
            return json.load(codecs.getreader(encoding)(stream), parse_constant=strict_json.strict_constant)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
