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
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, get_encoding
from rest_framework.renderers import JSONRenderer
from rest_framework.utils import json as strict_json

# A \u escape of a UTF-16 surrogate (D800 to DFFF). A valid pair reads as one character; only a lone one is left
# in the text, where it is no character at all: no UTF-8 can carry it, so no answer could repeat it.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class StreamedJSONParser(BaseParser):
    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
            # NaN and Infinity are not JSON: refused, as DRF's strict parser does.
            data = json.loads(text, parse_constant=strict_json.strict_constant, object_pairs_hook=_without_repeats)
        except RecursionError:
            raise ParseError("JSON parse error - the JSON nests too deeply to be a request of this API") from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
        if SURROGATE_ESCAPE.search(text) and _holds_a_lone_surrogate(data):
            raise ParseError(
                "JSON parse error - a text holds a lone surrogate escape (\\ud800 to \\udfff), which is no "
                "character: send the text as it reads, in UTF-8"
            )
        return data


def _without_repeats(pairs: list[tuple[str, object]]) -> dict:
    """An object whose keys are each given once: with a key given twice, which value is meant cannot be told."""
    data = dict(pairs)
    if len(data) < len(pairs):
        seen = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the key {repeated!r} is given twice in one object")
    return data


def _holds_a_lone_surrogate(data: object) -> bool:
    """Whether any key or text in the parsed body holds a lone surrogate; walked without recursion."""
    waiting = [data]
    while waiting:
        item = waiting.pop()
        texts = []
        if isinstance(item, dict):
            texts = list(item)
            waiting.extend(item.values())
        elif isinstance(item, list):
            waiting.extend(item)
        elif isinstance(item, str):
            texts = [item]
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False
