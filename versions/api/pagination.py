from functools import cached_property, partial

from django.core.paginator import Paginator
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class NumberedHistoryPaginator(Paginator):
    """Pages of a gap-free history numbered 1..total, newest first (prompt versions,
    checkpoints). Page p holds numbers (total - p*size, total - (p-1)*size]: a range scan of the
    (owner, number) index however deep the page, and the count is the owner's counter, so no
    COUNT(*) and no OFFSET that grow with history."""

    def __init__(self, object_list, per_page, *, total, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.total = total

    @cached_property
    def count(self):
        return self.total

    def page(self, number):
        number = self.validate_number(number)
        top = self.total - (number - 1) * self.per_page
        rows = list(self.object_list.filter(number__gt=max(top - self.per_page, 0), number__lte=top))
        return self._get_page(rows, number, self)


def paginated_response(*, view, request, queryset, serializer_class, context=None, numbered_total=None):
    """One page of ``queryset`` (a queryset or a list) serialized with ``serializer_class``.

    ``numbered_total`` (the owner's version counter) pages a whole gap-free history by number
    range instead of OFFSET (see NumberedHistoryPaginator)."""
    paginator = StandardPagination()
    if numbered_total is not None:
        paginator.django_paginator_class = partial(NumberedHistoryPaginator, total=numbered_total)
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context or {"request": request}).data)
