from functools import cached_property, partial

from django.core.paginator import Paginator
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class NumberedPaginator(Paginator):
    """Pages of a gap-free sequence numbered 1..total: prompt versions and checkpoints (``number``,
    newest first) and an evaluation's case results (``position``, in case order). Page p is a
    range of the (owner, field) index, e.g. numbers (total - p*size, total - (p-1)*size] newest
    first, however deep the page; the count is known without COUNT(*) (the owner's counter), so
    nothing grows with history, and no OFFSET."""

    def __init__(self, object_list, per_page, *, total, field="number", newest_first=True, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.total, self.field, self.newest_first = total, field, newest_first

    @cached_property
    def count(self):
        return self.total

    def page(self, number):
        number = self.validate_number(number)
        if self.newest_first:
            top = self.total - (number - 1) * self.per_page
            low = max(top - self.per_page, 0)
        else:
            low = (number - 1) * self.per_page
            top = min(low + self.per_page, self.total)
        rows = list(self.object_list.filter(**{f"{self.field}__gt": low, f"{self.field}__lte": top}))
        return self._get_page(rows, number, self)


def paginated_response(*, view, request, queryset, serializer_class=None, rows=None, context=None, numbered_total=None):
    """One page of ``queryset`` (a queryset or a list) serialized with ``serializer_class``, or
    turned into response rows by ``rows`` (a selector building the API's shape from plain rows,
    where a serializer per object would cost more than the query).

    ``numbered_total`` (the owner's version counter) pages a whole gap-free history by number
    range instead of OFFSET (see NumberedPaginator)."""
    paginator = StandardPagination()
    if numbered_total is not None:
        paginator.django_paginator_class = partial(NumberedPaginator, total=numbered_total)
    page = paginator.paginate_queryset(queryset, request, view=view)
    if rows is not None:
        return paginator.get_paginated_response(rows(page))
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context or {"request": request}).data)
