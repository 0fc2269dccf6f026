from functools import cached_property

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
