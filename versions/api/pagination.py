from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def paginated_response(*, view, request, queryset, serializer_class, context=None):
    """One page of ``queryset`` (a queryset or a list) serialized with ``serializer_class``."""
    paginator = StandardPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context or {"request": request}).data)
