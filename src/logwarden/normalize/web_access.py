"""Web access logs: ingress-nginx, nginx and Envoy/Istio lines, one parser core for three formats.

One input unit is one log line (bytes, without its newline). The three formats share one
parser core (`_access`): a format is a list of named fields, each a regular expression, and
a line that does not match is diagnosed field by field, so `MalformedInput` names the first
field that is wrong and where (``status: expected ... at column 57``). The grammars are in
`_access_nginx` (ingress-nginx, nginx) and `_access_envoy` (Envoy, Istio); every public
name is imported here.

Formats (module-level objects, each a `normalize.base.Format`):

* `INGRESS_NGINX` (source ``ingress_nginx``): ingress-nginx's default ``upstreaminfo``::

    $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
    "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name]
    [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length
    $upstream_response_time $upstream_status $req_id

* `NGINX` (source ``nginx_access``): nginx ``combined``, ``$remote_addr - $remote_user
  [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"``,
  with what real logs add: a leading virtual host (``lessons.example.com 192.168.0.1 - -``),
  an X-Forwarded-For list in the address position, bare (``10.0.0.2, 10.0.0.1, 127.0.0.1``)
  or quoted and followed by the address (``"10.5.102.222, 199.96.1.1" 10.2.1.185``), and
  extra trailing fields (``"$http_x_forwarded_for"``), kept unparsed.
* `ENVOY` (source ``envoy_access``): Envoy's default format::

    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
    %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
    %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
    "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"

  and Istio's default TEXT format, which adds ``%RESPONSE_CODE_DETAILS%
  %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%"`` after the flags
  and ``%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS%
  %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%`` at the end. A leading
  ``ACCESS `` (Ambassador) is accepted; trailing extra fields are kept unparsed.

The document: Sigma's webserver and proxy field names, so SigmaHQ's web rules run
unchanged (these are the names the rules in ``rules/web`` use, plus the taxonomy's basic
webserver ones). A value logged as ``-`` (or empty) is ``None``, which Sigma's ``null``
matches.

=================== ====================================================================
``c-ip``            the client: the first address of a forwarded list, else the peer
                    (Envoy: the first X-Forwarded-For entry, else the downstream remote
                    address without its port)
``cs-username``     ``$remote_user`` (nginx formats)
``cs-method``       the method as logged, also invalid ones (``PATCHp``)
``cs-uri``          the request target as logged (path and query, percent-encoded)
``cs-uri-stem``,    the target up to the first ``?``
``c-uri``
``cs-uri-query``,   the target after the first ``?`` (without it); ``None`` without ``?``
``c-uri-query``
``c-uri-extension`` the extension of the last path segment of the stem (``exe``), or None
``cs-version``      the protocol (``HTTP/1.1``, ``HTTP/2``)
``sc-status``       the status code (int; Envoy's 0 when the client went away)
``sc-bytes``        response bytes (nginx ``$body_bytes_sent``; Envoy ``BYTES_SENT``)
``cs-bytes``        request bytes (``$request_length``; Envoy ``BYTES_RECEIVED``)
``cs-referer``      the Referer header
``cs-user-agent``,  the User-Agent header
``c-useragent``
``cs-host``         the virtual host (nginx prefix) or Envoy's ``:authority``
``dst_ip``          the upstream's IP: ingress-nginx the last entry of ``$upstream_addr``
                    (the one that answered), Envoy ``%UPSTREAM_HOST%``; None for a
                    ``unix:`` socket or an address that is not ``ip:port``
=================== ====================================================================

URIs stay as logged, percent-encoded: nginx writes ``$request`` raw and Envoy its
``:path``, and SigmaHQ's web rules expect that: where a payload may be encoded they list
both spellings (``'=<script>'`` and ``'=%3Cscript%3E'``, ``'${'`` and ``'$%7B'``), and
their keywords search the whole line. Decoding here would make the encoded spellings
unmatchable and let double-encoded payloads (``%253C``) change meaning.

Format-specific members, under the log format's own variable names:

* ingress-nginx: ``request`` (the request line), ``request_time`` (seconds, float),
  ``proxy_upstream_name``, ``proxy_alternative_upstream_name``, ``upstream_addr`` (list of
  str), ``upstream_response_length`` (list of int), ``upstream_response_time`` (list of
  float), ``upstream_status`` (list of int), ``request_id`` (``$req_id``). Upstream lists
  keep nginx's order, a ``-`` entry is None; ``, `` separates tries and `` : `` internal
  redirects, both become one flat list.
* nginx: ``request``, ``remote_addr`` (every address of the address position, in order,
  when there is more than one), ``extra`` (trailing fields after the user agent, as
  logged).
* Envoy: ``response_flags``, ``duration`` and ``upstream_service_time`` (ms, int),
  ``x_forwarded_for``, ``request_id``, ``upstream_host``; Istio adds
  ``response_code_details``, ``connection_termination_details``,
  ``upstream_transport_failure_reason``, ``upstream_cluster``, ``upstream_local_address``,
  ``downstream_local_address``, ``downstream_remote_address``, ``requested_server_name``,
  ``route_name``; ``extra`` as for nginx.

Alert labels: ``user`` is ``$remote_user`` when logged. ingress-nginx names its upstream
``<namespace>-<service>-<port>``; since namespaces, services and port names may all contain
``-``, the namespace is only read from a name of exactly three ``-``-separated parts
(``default-web-8080``), never from ``upstream-default-backend``; ``esmon-esmon-es-http-9200``
gives no namespace. Alert ids: the request id (ingress-nginx ``$req_id``, Envoy
``X-Request-Id``), no stage.

What cannot be recovered: nginx's ``combined`` has no request length, upstream or request
id; an X-Forwarded-For list says what proxies claimed, the first entry is not proven; a
line from a custom ``log_format`` is malformed, naming the first field that differs.
"""

from __future__ import annotations

from logwarden.normalize._access import AccessLine, parse_time_local_ns
from logwarden.normalize._access_envoy import ENVOY, EnvoyLine
from logwarden.normalize._access_nginx import (
    INGRESS_NGINX,
    NGINX,
    IngressLine,
    NginxLine,
    upstream_namespace,
)

__all__ = [
    "ENVOY",
    "INGRESS_NGINX",
    "NGINX",
    "AccessLine",
    "EnvoyLine",
    "IngressLine",
    "NginxLine",
    "parse_time_local_ns",
    "upstream_namespace",
]
