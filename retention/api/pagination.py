"""Cursor pagination: pages stay stable while rows are added, and no page needs a COUNT of the table."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
BAD_CURSOR = "is not a cursor this API gave out: follow the `next` and `previous` links"


class NewestFirstPagination(CursorPagination):
    """Newest first; rows created in the same instant are kept apart by their id."""

    ordering = ("-created_at", "-pk")
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        """The page_size asked for, from 1 up to MAX_PAGE_SIZE (larger is capped); anything else is refused rather
        than quietly replaced by the default."""
        asked = request.query_params.get(self.page_size_query_param)
        if asked is None:
            return self.page_size
        if not (asked.isascii() and asked.isdecimal()) or int(asked) < 1:
            raise ValidationError({self.page_size_query_param: [f"a whole number from 1 to {MAX_PAGE_SIZE}"]})
        return min(int(asked), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "default": self.page_size}
                parameter["description"] = f"Rows a page, from 1; a larger number than {MAX_PAGE_SIZE} is capped there."
        return parameters

    def decode_cursor(self, request):
        # A malformed cursor is a mistake in the request (400), not a missing page (404).
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [BAD_CURSOR]}) from None

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except DjangoValidationError:  # a well-encoded cursor whose position is no valid value
            raise ValidationError({self.cursor_query_param: [BAD_CURSOR]}) from None


class CodePagination(NewestFirstPagination):
    ordering = ("code",)
