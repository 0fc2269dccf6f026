"""API tokens: list, create (the key shown once), revoke."""

from rest_framework import status
from rest_framework.response import Response

from core.api.schema import api_schema
from core.api.views import ApiView
from versions import selectors, services
from versions.api import serializers as s
from versions.throttling import TokenCreateThrottle
from versions.api.views.common import _valid


class TokenListApi(ApiView):
    throttle_classes = [TokenCreateThrottle]

    @api_schema(operation_id="tokens_list", tags=["tokens"], responses=s.TokenSerializer(many=True), errors=(401,))
    def get(self, request):
        return self.paginated(selectors.tokens_for_user(user=request.user), serializer_class=s.TokenSerializer)

    @api_schema(operation_id="tokens_create", tags=["tokens"], request=s.TokenCreateSerializer, responses={201: s.TokenCreatedSerializer}, errors=(400, 401, 429))
    def post(self, request):
        data = _valid(s.TokenCreateSerializer, request.data)
        token, key = services.token_create(user=request.user, name=data["name"])
        token.key = key
        return Response(s.TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetailApi(ApiView):
    @api_schema(operation_id="tokens_revoke", tags=["tokens"], responses={204: None}, errors=(401, 404), description="Revoke a token: it is refused from the next request on.")
    def delete(self, request, token_id):
        services.token_revoke(token=selectors.token_get(user=request.user, token_id=token_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
