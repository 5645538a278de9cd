"""OAuth 2.0: ``/services/oauth2/token``, ``revoke``, ``userinfo`` and the ``/id/`` identity URL."""

from __future__ import annotations
